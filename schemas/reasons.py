"""Machine-readable reasons for rejecting an event, and the error that carries one.

Every bad input the contract layer (or the validator built on it) can detect has exactly one
:class:`Reason`. The DLQ record carries ``reason`` (the enum value, a stable snake_case
string) and a human message. Add members; never rename or remove one (DLQ consumers and
dashboards key on them).
"""

from __future__ import annotations

from enum import StrEnum

from schemas.exceptions import ContractError, KafkaCoordinates


class Reason(StrEnum):
    """Why an event breaks the contract. Values are stable identifiers."""

    # transport / framing
    EMPTY_VALUE = "empty_value"
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    # CloudEvents headers
    MISSING_HEADER = "missing_header"
    BAD_HEADER = "bad_header"
    BAD_CONTENT_TYPE = "bad_content_type"
    BAD_EVENT_ID = "bad_event_id"
    BAD_TIME = "bad_time"
    FUTURE_TIME = "future_time"
    BAD_SOURCE = "bad_source"
    BAD_DATASCHEMA = "bad_dataschema"
    TYPE_MISMATCH = "type_mismatch"
    SUBJECT_MISMATCH = "subject_mismatch"
    SOURCE_MISMATCH = "source_mismatch"
    KEY_MISMATCH = "key_mismatch"
    # record-change fields
    UNKNOWN_RECORD_TYPE = "unknown_record_type"
    UNKNOWN_SCHEMA_MAJOR = "unknown_schema_major"
    BAD_OP = "bad_op"
    BAD_RECORD_ID = "bad_record_id"
    BAD_VERSION = "bad_version"
    BAD_SEQ = "bad_seq"
    BAD_SIGNER = "bad_signer"
    MISSING_FIELD = "missing_field"
    SCHEMA_VIOLATION = "schema_violation"
    WRONG_TYPE = "wrong_type"
    MISSING_DATA = "missing_data"
    DATA_ON_DELETE = "data_on_delete"
    # payload formats and code lists
    BAD_HEALTH_ID = "bad_health_id"
    BAD_CITIZEN_ID = "bad_citizen_id"
    BAD_PHONE = "bad_phone"
    BAD_ICD10 = "bad_icd10"
    UNKNOWN_VACCINE = "unknown_vaccine"
    UNKNOWN_CODE = "unknown_code"
    BAD_FORMAT = "bad_format"
    BAD_DATE = "bad_date"
    FUTURE_DATE = "future_date"
    OUT_OF_RANGE = "out_of_range"
    INCONSISTENT = "inconsistent"
    # signatures (schemas.signing)
    BAD_SIGNATURE = "bad_signature"
    TAMPERED = "tampered"
    SIGNER_NOT_REGISTERED = "signer_not_registered"
    SIGNATURE_STATION_MISMATCH = "signature_station_mismatch"
    SIGNER_KEY_EXPIRED = "signer_key_expired"
    SIGNER_NOT_AUTHORISED = "signer_not_authorised"
    # need reference data or state: raised by the validator (streams/), defined here
    UNKNOWN_STATION = "unknown_station"
    CLOSED_STATION = "closed_station"
    BEFORE_STATION_OPENED = "before_station_opened"
    DUPLICATE_EVENT = "duplicate_event"
    REPLAY_STALE_VERSION = "replay_stale_version"
    DELETE_UNKNOWN_RECORD = "delete_unknown_record"
    EVENT_TOO_OLD = "event_too_old"
    # added with key ids, revocation, header allow-list, ownership and partitioning
    HEADERS_TOO_LARGE = "headers_too_large"
    UNKNOWN_HEADER = "unknown_header"
    RESERVED_HEADER = "reserved_header"
    UNKNOWN_KEY_ID = "unknown_key_id"
    SIGNER_KEY_REVOKED = "signer_key_revoked"
    WRONG_PARTITION = "wrong_partition"
    VERSION_JUMP = "version_jump"
    NOT_RECORD_HOLDER = "not_record_holder"
    # the pipeline could not handle this one event (see docs/streams.md)
    PROCESSING_ERROR = "processing_error"
    OUTPUT_REJECTED = "output_rejected"


REASON_DESCRIPTIONS: dict[Reason, str] = {
    Reason.EMPTY_VALUE: "the Kafka value is null (tombstones are not part of the contract)",
    Reason.OVERSIZED: "the value is larger than MAX_VALUE_BYTES",
    Reason.NOT_JSON: "the value is not valid UTF-8 JSON",
    Reason.NOT_OBJECT: "the value is JSON but not an object",
    Reason.MISSING_HEADER: "a required ce_* header or content-type is absent",
    Reason.BAD_HEADER: "a header is duplicated, not UTF-8, or ce_specversion is not 1.0",
    Reason.BAD_CONTENT_TYPE: "content-type is not application/json",
    Reason.BAD_EVENT_ID: "ce_id is not a UUIDv7",
    Reason.BAD_TIME: "ce_time is not an RFC 3339 timestamp with an offset",
    Reason.FUTURE_TIME: "ce_time is later than now plus the allowed clock skew",
    Reason.BAD_SOURCE: "ce_source is not station/<5-digit commune code>",
    Reason.BAD_DATASCHEMA: "ce_dataschema is not <record_type>/v<major> for this record type",
    Reason.TYPE_MISMATCH: "ce_type is not vn.health.<record_type>.<op> of the value",
    Reason.SUBJECT_MISMATCH: "ce_subject differs from record_id",
    Reason.SOURCE_MISMATCH: "the station in record_id differs from the station in ce_source",
    Reason.KEY_MISMATCH: "the Kafka key or the payload's health id differs from the record key",
    Reason.UNKNOWN_RECORD_TYPE: "record_type is not one of the contract's record types",
    Reason.UNKNOWN_SCHEMA_MAJOR: "the major version in ce_dataschema is not accepted",
    Reason.BAD_OP: "op is not upsert or delete",
    Reason.BAD_RECORD_ID: "record_id does not follow the record type's id format",
    Reason.BAD_VERSION: "record_version is not an integer in 1..2^53-1 (or not 1 on a transfer)",
    Reason.BAD_SEQ: "station_seq is not an integer in 1..2^53-1",
    Reason.BAD_SIGNER: "signer or key_id is not a well-formed id",
    Reason.MISSING_FIELD: "a required field of the value or the payload is absent",
    Reason.SCHEMA_VIOLATION: "a field not in the (closed) schema is present",
    Reason.WRONG_TYPE: "a field has the wrong JSON type",
    Reason.MISSING_DATA: "an upsert carries no data (after-image)",
    Reason.DATA_ON_DELETE: "a delete carries data",
    Reason.BAD_HEALTH_ID: "a health id is not a 10-digit social-insurance number",
    Reason.BAD_CITIZEN_ID: "a citizen id (CCCD) is malformed or contradicts sex/birth year",
    Reason.BAD_PHONE: "a phone number is not 10 digits starting with 0",
    Reason.BAD_ICD10: "an ICD-10 code is malformed or outside the shipped subset",
    Reason.UNKNOWN_VACCINE: "the vaccine code is not in the EPI code list",
    Reason.UNKNOWN_CODE: "a code is not in its code list (disease, medicine, cadre, ...)",
    Reason.BAD_FORMAT: "a string does not match its format (period, local id, ...)",
    Reason.BAD_DATE: "a date is not YYYY-MM-DD",
    Reason.FUTURE_DATE: "a payload date is after today (Vietnam time)",
    Reason.OUT_OF_RANGE: "a number or a list length is outside its allowed range",
    Reason.INCONSISTENT: "fields contradict each other (e.g. diastolic >= systolic)",
    Reason.BAD_SIGNATURE: "the signature is absent or not base64 of 64 bytes",
    Reason.TAMPERED: "the signature does not verify over the event's canonical bytes "
    "with any key of the signer",
    Reason.SIGNER_NOT_REGISTERED: "the signer has no public key in the key registry",
    Reason.SIGNATURE_STATION_MISMATCH: "the signer's key belongs to another station",
    Reason.SIGNER_KEY_EXPIRED: "the key's validity does not cover the event "
    "(made before valid_from, or received from valid_to on)",
    Reason.SIGNER_NOT_AUTHORISED: "the key that signed lacks the role the record needs "
    "(a report submission is signed by the station head)",
    Reason.UNKNOWN_STATION: "the station is not in the facility hierarchy",
    Reason.CLOSED_STATION: "the station was closed at ce_time",
    Reason.BEFORE_STATION_OPENED: "ce_time is before the station opened",
    Reason.DUPLICATE_EVENT: "an event with this id was already accepted",
    Reason.REPLAY_STALE_VERSION: "record_version is not above the last accepted version",
    Reason.DELETE_UNKNOWN_RECORD: "a delete for a record never accepted",
    Reason.EVENT_TOO_OLD: "ce_time is older than the validator's maximum event age",
    Reason.HEADERS_TOO_LARGE: "more than 32 headers, or more than 8 KiB of header names and values",
    Reason.UNKNOWN_HEADER: "a header the contract does not define (an unknown ce_* or any other)",
    Reason.RESERVED_HEADER: "a tuyen_* header: only the pipeline sets those",
    Reason.UNKNOWN_KEY_ID: "key_id names no key of the signer in the key registry",
    Reason.SIGNER_KEY_REVOKED: "the key was revoked before the broker received the event",
    Reason.WRONG_PARTITION: "the message is not on the partition murmur2(key) gives",
    Reason.VERSION_JUMP: "record_version is more than the allowed step above the last version",
    Reason.NOT_RECORD_HOLDER: "the record is held by another station",
    Reason.PROCESSING_ERROR: "the pipeline failed on this event (a bug: the message says where)",
    Reason.OUTPUT_REJECTED: "the broker refused an output of this event (e.g. too large)",
}


class ContractViolation(ContractError):
    """An event breaks the contract. Terminal: the same bytes will always fail."""

    retryable = False

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        field: str | None = None,
        coordinates: KafkaCoordinates | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{reason.value}: {message}", coordinates=coordinates)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:  # picklable for process pools
        return (_rebuild, (self.reason, self.message, self.field, self.coordinates))


def _rebuild(
    reason: Reason, message: str, field: str | None, coordinates: KafkaCoordinates | None
) -> ContractViolation:
    return ContractViolation(reason, message, field=field, coordinates=coordinates)
