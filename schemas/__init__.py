"""The event contract: envelope, payload models, JSON Schemas, upcasters, hierarchy, code lists.

Public API of the contract (the facility hierarchy lives in ``schemas.hierarchy``)::

    change = make_change(station=..., record_type="encounter", record_id=..., op="upsert",
                         record_version=1, station_seq=42, signer="hw-00004-1", data=payload)
    change = sign(change, signing_key)
    msg = encode(change)                       # KafkaMessage(key, value, headers)
    change = decode(msg.value, msg.headers)    # ContractViolation(reason, message) if bad
    verify(change, registry)
    major, data = upcast(change.record_type, change.schema_major, change.data)
"""

from schemas.canonical import canonical_json
from schemas.envelope import (
    MAX_CLOCK_SKEW,
    Op,
    RecordChange,
    check_change,
    format_time,
    make_change,
    new_event_id,
)
from schemas.exceptions import ContractError, KafkaCoordinates, TuyenError
from schemas.fields import Payload
from schemas.keyreload import ReloadingKeyRegistry
from schemas.keys import (
    DevKeyRegistry,
    KeyRegistry,
    Revocation,
    SignerKey,
    StaticKeyRegistry,
    dev_signer,
    dev_signing_key,
)
from schemas.reasons import REASON_DESCRIPTIONS, ContractViolation, Reason
from schemas.registry import (
    CURRENT_MAJOR,
    RecordType,
    model_for,
    parse_payload,
    record_key,
    resource_record_id,
)
from schemas.signing import canonical_bytes, sign, verify
from schemas.upcasters import upcast
from schemas.wire import (
    MAX_VALUE_BYTES,
    KafkaMessage,
    decode,
    encode,
    from_json_line,
    from_structured,
    to_json_line,
    to_structured,
)

__all__ = [
    "CURRENT_MAJOR",
    "MAX_CLOCK_SKEW",
    "MAX_VALUE_BYTES",
    "REASON_DESCRIPTIONS",
    "ContractError",
    "ContractViolation",
    "DevKeyRegistry",
    "KafkaCoordinates",
    "KafkaMessage",
    "KeyRegistry",
    "Op",
    "Payload",
    "Reason",
    "RecordChange",
    "RecordType",
    "ReloadingKeyRegistry",
    "Revocation",
    "SignerKey",
    "StaticKeyRegistry",
    "TuyenError",
    "canonical_bytes",
    "canonical_json",
    "check_change",
    "decode",
    "dev_signer",
    "dev_signing_key",
    "encode",
    "format_time",
    "from_json_line",
    "from_structured",
    "make_change",
    "model_for",
    "new_event_id",
    "parse_payload",
    "record_key",
    "resource_record_id",
    "sign",
    "to_json_line",
    "to_structured",
    "upcast",
    "verify",
]
