"""Ed25519 signatures of record changes by the health worker who made them.

Canonical bytes: RFC 8785 (JSON Canonicalization Scheme, :mod:`schemas.canonical`) of the
object with the CloudEvents attributes ``id, source, type, time, dataschema, subject``
(``time`` in the canonical form ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC) and the value fields
``record_type, record_id, op, record_version, station_seq, signer, data`` and ``key_id`` when
the event names one (everything but ``signature``; ``data`` as sent, ``null`` for a delete).
Numbers are RFC 8785 numbers: ``60.0`` and ``60`` are the same signed bytes.
The signature is standard base64 of the 64-byte Ed25519 signature.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from schemas.canonical import canonical_json
from schemas.envelope import RecordChange, format_time
from schemas.keyring import RegisteredKey, key_revoked, key_usable
from schemas.keys import KeyRegistry, SignerKey
from schemas.reasons import ContractViolation, Reason
from schemas.wire import value_dict

__all__ = ["canonical_bytes", "sign", "verify", "verify_with"]

K = TypeVar("K", bound=RegisteredKey)


def signed_object(change: RecordChange) -> dict[str, Any]:
    """The object whose RFC 8785 form is signed (see the module docstring): the event's
    attributes but ``specversion`` and its value fields but ``signature``."""
    obj = value_dict(change)
    del obj["signature"]
    rt, op = obj["record_type"], obj["op"]
    obj.update(  # the attributes, built here without the model's enum-valued properties
        id=change.id,
        source=f"station/{change.station}",
        type=f"vn.health.{rt}.{op}",
        time=format_time(change.time),
        dataschema=f"{rt}/v{change.schema_major}",
        subject=change.record_id,
    )
    return obj


def canonical_bytes(change: RecordChange) -> bytes:
    """The bytes that are signed (see the module docstring)."""
    try:
        return canonical_json(signed_object(change))
    except rfc8785.CanonicalizationError as exc:
        raise ContractViolation(
            Reason.OUT_OF_RANGE, f"the event has no RFC 8785 form: {exc}", field="data"
        ) from None


def sign(
    change: RecordChange, signing_key: SigningKey, *, key_id: str | None = None
) -> RecordChange:
    """``change`` with ``signature`` (and ``key_id`` when given) set by ``signing_key``."""
    if key_id is not None:
        change = change.model_copy(update={"key_id": key_id})
    sig = signing_key.sign(canonical_bytes(change)).signature
    return change.model_copy(update={"signature": base64.b64encode(sig).decode()})


@lru_cache(maxsize=65536)
def _verify_key(public_key: bytes) -> VerifyKey:
    return VerifyKey(public_key)


def _verifies(key: RegisteredKey, message: bytes, sig: bytes) -> bool:
    try:
        _verify_key(key.public_key).verify(message, sig)
    except BadSignatureError:
        return False
    return True


def _when(t: datetime | None) -> str:
    return format_time(t) if t is not None else "-"


def verify(
    change: RecordChange, registry: KeyRegistry, *, received: datetime | None = None
) -> SignerKey:
    """Check the signature against the signer's keys; returns the key that verified it (its
    roles are what the signer may sign, :func:`schemas.keys.require_role`).

    ``received`` is when the broker received the event (its LogAppendTime; the wall clock when
    ``None``): a key revoked at or before it no longer signs, whatever ``ce_time`` says.
    Raises ``ContractViolation`` with ``signer_not_registered``,
    ``signature_station_mismatch`` or a reason of :func:`verify_with`.
    """
    keys = registry.keys_of(change.signer)
    if not keys:
        raise ContractViolation(
            Reason.SIGNER_NOT_REGISTERED,
            f"signer {change.signer} is not registered",
            field="signer",
        )
    if keys[0].station != change.station:
        raise ContractViolation(
            Reason.SIGNATURE_STATION_MISMATCH,
            f"signer {change.signer} belongs to station {keys[0].station}, not {change.station}",
            field="signer",
        )
    return verify_with(
        keys,
        field="signer",
        key_id=change.key_id,
        signature=change.signature,
        message=lambda: canonical_bytes(change),
        signed=change.time,
        received=received or datetime.now(UTC),
        what="event",
    )


def verify_with(
    keys: Sequence[K],
    *,
    field: str,
    key_id: str | None,
    signature: str,
    message: Callable[[], bytes],
    signed: datetime,
    received: datetime,
    what: str,
) -> K:
    """The key of ``keys`` (one owner's, not empty; ``field`` names the owner's kind and
    field, ``signer`` / ``approver``) that verifies ``signature`` over ``message()`` and may
    sign ``what`` was signed at ``signed`` and received by the broker at ``received``
    (:func:`schemas.keyring.key_usable`).

    ``key_id`` picks the key; without one every key of the owner is tried (usable keys
    first). Raises ``ContractViolation`` with ``unknown_key_id``, ``bad_signature`` (absent
    or malformed), ``signer_key_revoked`` / ``signer_key_expired`` (it verifies, but with a
    key revoked when received / signed before the key's ``valid_from`` or received from its
    ``valid_to`` on) or ``tampered`` (no key verifies it).
    """
    owner = keys[0].owner
    if key_id is not None:
        keys = [k for k in keys if k.key_id == key_id]
        if not keys:
            raise ContractViolation(
                Reason.UNKNOWN_KEY_ID, f"{field} {owner} has no key {key_id}", field="key_id"
            )
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64:
        raise ContractViolation(
            Reason.BAD_SIGNATURE, "signature must be base64 of 64 bytes", field="signature"
        )
    usable = [k for k in keys if key_usable(k, signed, received)]
    signed_bytes = message()
    for key in usable:
        if _verifies(key, signed_bytes, sig):
            return key
    for key in keys:  # the precise reason when a key that may not sign made it
        if key in usable or not _verifies(key, signed_bytes, sig):
            continue
        name = f"key {key.key_id or '(only)'} of {owner}"
        if key_revoked(key, received):
            assert key.revoked_at is not None
            raise ContractViolation(
                Reason.SIGNER_KEY_REVOKED,
                f"{name} was revoked at {format_time(key.revoked_at)}; the broker received "
                f"the {what} at {format_time(received)}",
                field=field,
            )
        raise ContractViolation(
            Reason.SIGNER_KEY_EXPIRED,
            f"{name} does not sign the {what} made at {format_time(signed)} and received at "
            f"{format_time(received)} (valid {_when(key.valid_from)} to {_when(key.valid_to)})",
            field=field,
        )
    raise ContractViolation(
        Reason.TAMPERED,
        f"the signature does not verify over the {what} (altered after signing, or a key the "
        f"registry does not hold for this {field})",
        field="signature",
    )
