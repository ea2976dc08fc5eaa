"""The record types, their payload models by major version, record ids and record keys.

Record ids (``record_id``, also the CloudEvents ``subject``):

- ``person``: the health id itself (``0123456789``).
- other person-centred records: ``<health id>:<local id>``, local id ``[A-Za-z0-9._-]{1,64}``
  chosen by the station (a UUID is fine). For ``birth`` the health id is the mother's.
- station-scoped monthly records: ``<station>:<resource>:<YYYY-MM>`` with resource ``staff``,
  ``beds``, ``equipment``, ``stock`` (the resource snapshots) or ``submission`` (the
  station's monthly report submission).

The Kafka key is the part before the local id / period: the health id for person-centred
records, ``<station>:<resource>`` for resources, so one record's changes stay in order.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError

from schemas.fields import Payload
from schemas.payloads.clinical import (
    AntenatalVisitV1,
    ChronicEnrolmentV1,
    ChronicFollowupV1,
    ChronicFollowupV2,
    EncounterV1,
    EncounterV2,
)
from schemas.payloads.immunization import ImmunizationV1
from schemas.payloads.medicines import MedicineDispensedV1
from schemas.payloads.person import PersonV1
from schemas.payloads.reporting import ReportSubmissionV1
from schemas.payloads.resources import (
    BedSnapshotV1,
    EquipmentSnapshotV1,
    StaffSnapshotV1,
    StockSnapshotV1,
)
from schemas.payloads.surveillance import DiseaseCaseV1
from schemas.payloads.transfer import PersonTransferV1
from schemas.payloads.vital_events import BirthV1, DeathV1
from schemas.reasons import ContractViolation, Reason


class RecordType(StrEnum):
    """Stable snake_case record type names."""

    PERSON = "person"
    ENCOUNTER = "encounter"
    IMMUNIZATION = "immunization"
    CHRONIC_FOLLOWUP = "chronic_followup"
    ANTENATAL_VISIT = "antenatal_visit"
    BIRTH = "birth"
    DEATH = "death"
    DISEASE_CASE = "disease_case"
    STAFF_SNAPSHOT = "staff_snapshot"
    BED_SNAPSHOT = "bed_snapshot"
    EQUIPMENT_SNAPSHOT = "equipment_snapshot"
    STOCK_SNAPSHOT = "stock_snapshot"
    CHRONIC_ENROLMENT = "chronic_enrolment"
    REPORT_SUBMISSION = "report_submission"
    MEDICINE_DISPENSED = "medicine_dispensed"
    PERSON_TRANSFER = "person_transfer"


MODELS: Final[dict[RecordType, dict[int, type[Payload]]]] = {
    RecordType.PERSON: {1: PersonV1},
    RecordType.ENCOUNTER: {1: EncounterV1, 2: EncounterV2},
    RecordType.IMMUNIZATION: {1: ImmunizationV1},
    RecordType.CHRONIC_FOLLOWUP: {1: ChronicFollowupV1, 2: ChronicFollowupV2},
    RecordType.ANTENATAL_VISIT: {1: AntenatalVisitV1},
    RecordType.BIRTH: {1: BirthV1},
    RecordType.DEATH: {1: DeathV1},
    RecordType.DISEASE_CASE: {1: DiseaseCaseV1},
    RecordType.STAFF_SNAPSHOT: {1: StaffSnapshotV1},
    RecordType.BED_SNAPSHOT: {1: BedSnapshotV1},
    RecordType.EQUIPMENT_SNAPSHOT: {1: EquipmentSnapshotV1},
    RecordType.STOCK_SNAPSHOT: {1: StockSnapshotV1},
    RecordType.CHRONIC_ENROLMENT: {1: ChronicEnrolmentV1},
    RecordType.REPORT_SUBMISSION: {1: ReportSubmissionV1},
    RecordType.MEDICINE_DISPENSED: {1: MedicineDispensedV1},
    RecordType.PERSON_TRANSFER: {1: PersonTransferV1},
}

CURRENT_MAJOR: Final[dict[RecordType, int]] = {rt: max(v) for rt, v in MODELS.items()}

RESOURCE_OF: Final[dict[RecordType, str]] = {
    RecordType.STAFF_SNAPSHOT: "staff",
    RecordType.BED_SNAPSHOT: "beds",
    RecordType.EQUIPMENT_SNAPSHOT: "equipment",
    RecordType.STOCK_SNAPSHOT: "stock",
    RecordType.REPORT_SUBMISSION: "submission",
}

# payload field holding the health id that keys a person-centred record
KEY_FIELD: Final[dict[RecordType, str]] = {
    rt: ("mother_health_id" if rt is RecordType.BIRTH else "health_id")
    for rt in RecordType
    if rt not in RESOURCE_OF
}

# whole-string matches (fullmatch), ASCII classes only
_PERSON_ID_RE = re.compile(r"[0-9]{10}")
_PERSON_CENTRED_ID_RE = re.compile(r"([0-9]{10}):[A-Za-z0-9._-]{1,64}")
_ANY_PREFIXED_ID_RE = re.compile(r"[^:]+:[A-Za-z0-9._-]{1,64}")
_RESOURCE_ID_RE = re.compile(r"([0-9]{5}):([a-z]+):([0-9]{4}-(?:0[1-9]|1[0-2]))")

# pydantic's own error types -> reasons (custom errors already use Reason values as types)
_PYDANTIC_REASONS: Final[dict[str, Reason]] = {
    "extra_forbidden": Reason.SCHEMA_VIOLATION,
    "missing": Reason.MISSING_FIELD,
    "literal_error": Reason.UNKNOWN_CODE,
    "enum": Reason.UNKNOWN_CODE,
    "greater_than": Reason.OUT_OF_RANGE,
    "greater_than_equal": Reason.OUT_OF_RANGE,
    "less_than": Reason.OUT_OF_RANGE,
    "less_than_equal": Reason.OUT_OF_RANGE,
    "too_short": Reason.OUT_OF_RANGE,
    "too_long": Reason.OUT_OF_RANGE,
    "string_too_short": Reason.BAD_FORMAT,
    "string_too_long": Reason.BAD_FORMAT,
    "string_pattern_mismatch": Reason.BAD_FORMAT,
    "finite_number": Reason.OUT_OF_RANGE,
}
_REASON_VALUES: Final = frozenset(r.value for r in Reason)


_BY_NAME: Final[dict[str, RecordType]] = {rt.value: rt for rt in RecordType}


def record_type_of(name: str) -> RecordType:
    """The :class:`RecordType` named ``name``; ``unknown_record_type`` otherwise."""
    rt = _BY_NAME.get(name) if isinstance(name, str) else None
    if rt is not None:  # (a dict look-up: the enum's call costs more, twice per event)
        return rt
    try:
        return RecordType(name)
    except ValueError:
        raise ContractViolation(
            Reason.UNKNOWN_RECORD_TYPE, f"unknown record type {name!r}", field="record_type"
        ) from None


def model_for(record_type: str, major: int) -> type[Payload]:
    """The payload model of ``record_type`` at ``major``.

    Raises ``ContractViolation`` (``unknown_record_type`` / ``unknown_schema_major``).
    """
    by_major = MODELS[record_type_of(record_type)]
    model = by_major.get(major)
    if model is None:
        raise ContractViolation(
            Reason.UNKNOWN_SCHEMA_MAJOR,
            f"{record_type} has no major v{major} (accepted: {sorted(by_major)})",
            field="dataschema",
        )
    return model


def violation_from(exc: ValidationError, prefix: str = "data") -> ContractViolation:
    """The first error of a pydantic ``ValidationError`` as a ``ContractViolation``."""
    err = exc.errors(include_url=False)[0]
    etype = err["type"]
    if etype in _REASON_VALUES:
        reason = Reason(etype)
    elif etype in _PYDANTIC_REASONS:
        reason = _PYDANTIC_REASONS[etype]
    elif etype.endswith(("_type", "_parsing")) or etype in {"model_attributes_type"}:
        reason = Reason.WRONG_TYPE
    else:
        reason = Reason.SCHEMA_VIOLATION
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    more = exc.error_count() - 1
    suffix = f" (+{more} more)" if more > 0 else ""
    return ContractViolation(reason, f"{loc}: {err['msg']}{suffix}", field=loc)


def parse_payload(record_type: str, major: int, data: Any, *, now: Any = None) -> Payload:
    """Validate ``data`` (JSON-shaped: dict of str, int, float, bool, None, list) as the
    payload of ``record_type`` at ``major``. ``now`` (a tz-aware datetime) fixes "today".

    Raises ``ContractViolation`` with the reason of the first problem.
    """
    return validate_payload(model_for(record_type, major), data, now=now)


def validate_payload(model: type[Payload], data: Any, *, now: Any = None) -> Payload:
    """:func:`parse_payload` with the payload model already found (:func:`model_for`)."""
    if not isinstance(data, dict):
        raise ContractViolation(Reason.WRONG_TYPE, "data must be a JSON object", field="data")
    try:
        return model.model_validate(data, context={"now": now} if now is not None else None)
    except ValidationError as exc:
        raise violation_from(exc) from None


def record_key(record_type: str, record_id: str) -> str:
    """The Kafka key (as text) of a record: see the module docstring.

    Raises ``ContractViolation(bad_record_id)`` when ``record_id`` is malformed.
    """
    rt = record_type_of(record_type)
    if rt is RecordType.PERSON:
        if _PERSON_ID_RE.fullmatch(record_id):
            return record_id
        raise ContractViolation(
            Reason.BAD_HEALTH_ID,
            f"person record_id must be the 10-digit health id, got {record_id!r}",
            field="record_id",
        )
    resource = RESOURCE_OF.get(rt)
    if resource is None:
        m = _PERSON_CENTRED_ID_RE.fullmatch(record_id)
        if m:
            return m.group(1)
        if _ANY_PREFIXED_ID_RE.fullmatch(record_id):
            raise ContractViolation(
                Reason.BAD_HEALTH_ID,
                f"{rt} record_id must start with a 10-digit health id, got {record_id!r}",
                field="record_id",
            )
        raise ContractViolation(
            Reason.BAD_RECORD_ID,
            f"{rt} record_id must be <health id>:<local id>, got {record_id!r}",
            field="record_id",
        )
    r = _RESOURCE_ID_RE.fullmatch(record_id)
    if r and r.group(2) == resource:
        return f"{r.group(1)}:{resource}"
    raise ContractViolation(
        Reason.BAD_RECORD_ID,
        f"{rt} record_id must be <station>:{resource}:<YYYY-MM>, got {record_id!r}",
        field="record_id",
    )


def resource_record_id(record_type: str, station: str, period: str) -> str:
    """``<station>:<resource>:<period>`` for a resource snapshot."""
    return f"{station}:{RESOURCE_OF[record_type_of(record_type)]}:{period}"
