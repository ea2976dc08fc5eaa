"""Ed25519 signatures of record changes by the health worker who made them.

Canonical bytes: ``orjson.dumps(obj, option=OPT_SORT_KEYS)`` of the object with the
CloudEvents attributes ``id, source, type, time, dataschema, subject`` (``time`` in the
canonical form ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC) and the value fields ``record_type,
record_id, op, record_version, station_seq, signer, data`` (everything but ``signature``;
``data`` exactly as sent, ``null`` for a delete). This is compact JSON with keys sorted,
UTF-8 unescaped: RFC 8785 (JCS) output for the values this contract allows.
The signature is standard base64 of the 64-byte Ed25519 signature.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from schemas.envelope import RecordChange, format_time
from schemas.keys import KeyRegistry
from schemas.reasons import ContractViolation, Reason


def canonical_bytes(change: RecordChange) -> bytes:
    """The bytes that are signed (see the module docstring)."""
    obj: dict[str, Any] = {
        "id": change.id,
        "source": change.source,
        "type": change.type,
        "time": format_time(change.time),
        "dataschema": change.dataschema,
        "subject": change.subject,
        "record_type": change.record_type.value,
        "record_id": change.record_id,
        "op": change.op.value,
        "record_version": change.record_version,
        "station_seq": change.station_seq,
        "signer": change.signer,
        "data": change.data,
    }
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def sign(change: RecordChange, signing_key: SigningKey) -> RecordChange:
    """``change`` with ``signature`` set by ``signing_key``."""
    sig = signing_key.sign(canonical_bytes(change)).signature
    return change.model_copy(update={"signature": base64.b64encode(sig).decode()})


@lru_cache(maxsize=65536)
def _verify_key(public_key: bytes) -> VerifyKey:
    return VerifyKey(public_key)


def verify(change: RecordChange, registry: KeyRegistry) -> None:
    """Check the signature. Raises ``ContractViolation`` with ``signer_not_registered``,
    ``signature_station_mismatch``, ``signer_key_expired``, ``bad_signature`` (absent or
    malformed) or ``tampered`` (well-formed but does not verify over the canonical bytes)."""
    key = registry.lookup(change.signer)
    if key is None:
        raise ContractViolation(
            Reason.SIGNER_NOT_REGISTERED,
            f"signer {change.signer} is not registered",
            field="signer",
        )
    if key.station != change.station:
        raise ContractViolation(
            Reason.SIGNATURE_STATION_MISMATCH,
            f"signer {change.signer} belongs to station {key.station}, not {change.station}",
            field="signer",
        )
    if not key.valid_at(change.time):
        raise ContractViolation(
            Reason.SIGNER_KEY_EXPIRED,
            f"the key of {change.signer} is not valid at {format_time(change.time)}",
            field="signer",
        )
    try:
        sig = base64.b64decode(change.signature, validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64:
        raise ContractViolation(
            Reason.BAD_SIGNATURE, "signature must be base64 of 64 bytes", field="signature"
        )
    try:
        _verify_key(key.public_key).verify(canonical_bytes(change), sig)
    except BadSignatureError:
        raise ContractViolation(
            Reason.TAMPERED,
            "the signature does not match the event (altered after signing, or wrong key)",
            field="signature",
        ) from None
