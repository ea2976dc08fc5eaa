"""The wire codec: :class:`RecordChange` <-> Kafka message (CloudEvents 1.0, binary mode).

Headers: ``ce_specversion`` (``1.0``), ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``,
``ce_dataschema``, ``ce_subject`` and ``content-type: application/json``, each once, and no
other header (an unknown ``ce_*`` or any other is ``unknown_header``, a ``tuyen_*`` one
``reserved_header``; more than :data:`MAX_HEADERS` headers or :data:`MAX_HEADER_BYTES` of
names and values is ``headers_too_large``). Value: a JSON object with exactly ``record_type,
record_id, op, record_version, station_seq, signer, signature, data`` and optionally
``key_id``. Key: the record key (UTF-8). Every format is matched on the whole string.

:func:`decode` checks everything that needs no reference data or state and raises
``ContractViolation`` with a :class:`~schemas.reasons.Reason`; the payload is validated once.
It does not verify the signature (:func:`schemas.signing.verify`) nor upcast.

The JSON Lines form used by file import is CloudEvents *structured* mode: one object per line
with the attributes at top level and the value object under ``data``
(:func:`to_json_line` / :func:`from_json_line`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from schemas.envelope import (
    KEY_ID_RE,
    MAX_CLOCK_SKEW,
    MAX_COUNTER,
    SPECVERSION,
    Op,
    RecordChange,
    check_change,
    format_time,
)
from schemas.reasons import ContractViolation, Reason
from schemas.registry import RecordType

CONTENT_TYPE: Final = "application/json"
MAX_VALUE_BYTES: Final = 256 * 1024
CE_HEADERS: Final = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_dataschema",
    "ce_subject",
)
REQUIRED_HEADERS: Final = (*CE_HEADERS, "content-type")
#: The only headers a station may send (each once); anything else is rejected.
ALLOWED_HEADERS: Final = frozenset(REQUIRED_HEADERS)
#: Headers the pipeline sets (DLQ reason, tier, ...): never accepted from a station.
RESERVED_HEADER_PREFIX: Final = "tuyen_"
#: Caps checked before anything else is read: header count, and names + values in bytes.
MAX_HEADERS: Final = 32
MAX_HEADER_BYTES: Final = 8 * 1024
VALUE_FIELDS: Final = (
    "record_type",
    "record_id",
    "op",
    "record_version",
    "station_seq",
    "signer",
    "signature",
    "data",
    "key_id",
)
_REQUIRED_VALUE_FIELDS: Final = frozenset(VALUE_FIELDS) - {"data", "key_id"}
_VALUE_FIELD_SET: Final = frozenset(VALUE_FIELDS)
# whole-string matches (fullmatch), ASCII classes only
_SOURCE_RE = re.compile(r"station/([0-9]{5})")
_DATASCHEMA_RE = re.compile(r"([a-z_]+)/v([1-9][0-9]{0,2})")
_SIGNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
# application/json, optionally with parameters (printable ASCII: no CR, LF or NUL)
_CONTENT_TYPE_RE = re.compile(r"application/json(?:[ \t]*;[ -~]*)?", re.IGNORECASE)
_RECORD_TYPES: Final = {rt.value: rt for rt in RecordType}
_OPS: Final = {op.value: op for op in Op}

Headers = Sequence[tuple[str, bytes | str | None]]


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """What to hand to a Kafka producer."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def value_dict(change: RecordChange) -> dict[str, Any]:
    """The value object (record-change fields and data) as JSON-shaped dict (``key_id`` only
    when the change names its key)."""
    out = {
        "record_type": change.record_type.value,
        "record_id": change.record_id,
        "op": change.op.value,
        "record_version": change.record_version,
        "station_seq": change.station_seq,
        "signer": change.signer,
        "signature": change.signature,
        "data": change.data,
    }
    if change.key_id is not None:
        out["key_id"] = change.key_id
    return out


def attributes(change: RecordChange) -> dict[str, str]:
    """The CloudEvents attributes (without the ``ce_`` prefix)."""
    return {
        "specversion": SPECVERSION,
        "id": change.id,
        "source": change.source,
        "type": change.type,
        "time": format_time(change.time),
        "dataschema": change.dataschema,
        "subject": change.subject,
    }


def encode(change: RecordChange) -> KafkaMessage:
    """The Kafka message of ``change`` (no validation: build changes with ``make_change``)."""
    headers = [("ce_" + k, v.encode()) for k, v in attributes(change).items()]
    headers.append(("content-type", CONTENT_TYPE.encode()))
    return KafkaMessage(
        key=change.key.encode(),
        value=orjson.dumps(value_dict(change)),
        headers=headers,
    )


def _check_header_budget(headers: Headers) -> None:
    """Count and size caps, before any header is looked at."""
    if len(headers) > MAX_HEADERS:
        raise ContractViolation(
            Reason.HEADERS_TOO_LARGE, f"{len(headers)} headers, the limit is {MAX_HEADERS}"
        )
    size = 0
    for name, raw in headers:
        size += len(name) + (len(raw) if raw is not None else 0)
    if size > MAX_HEADER_BYTES:
        raise ContractViolation(
            Reason.HEADERS_TOO_LARGE,
            f"headers hold {size} bytes, the limit is {MAX_HEADER_BYTES}",
        )


def _header_map(headers: Headers | None) -> dict[str, str]:
    headers = headers or ()
    _check_header_budget(headers)
    out: dict[str, str] = {}
    for name, raw in headers:
        if name not in ALLOWED_HEADERS:
            if name.startswith(RESERVED_HEADER_PREFIX):
                raise ContractViolation(
                    Reason.RESERVED_HEADER,
                    f"header {name[:64]!r} is set by the pipeline only",
                    field=name[:64],
                )
            raise ContractViolation(
                Reason.UNKNOWN_HEADER,
                f"header {name[:64]!r} is not part of the contract",
                field=name[:64],
            )
        if name in out:
            raise ContractViolation(Reason.BAD_HEADER, f"header {name} appears twice", field=name)
        if raw is None:
            raise ContractViolation(Reason.BAD_HEADER, f"header {name} has no value", field=name)
        # (the exact type first: a union's isinstance costs more, eight times per event)
        if type(raw) is bytes or isinstance(raw, bytes | bytearray | memoryview):
            try:
                out[name] = bytes(raw).decode()
            except UnicodeDecodeError:
                raise ContractViolation(
                    Reason.BAD_HEADER, f"header {name} is not UTF-8", field=name
                ) from None
        else:
            out[name] = raw
    if len(out) < len(REQUIRED_HEADERS):  # (each allowed name once: all there if as many)
        for name in REQUIRED_HEADERS:
            if name not in out:
                raise ContractViolation(
                    Reason.MISSING_HEADER, f"header {name} is missing", field=name
                )
    if out["ce_specversion"] != SPECVERSION:
        raise ContractViolation(
            Reason.BAD_HEADER,
            f"ce_specversion must be {SPECVERSION}, got {out['ce_specversion']!r}",
            field="ce_specversion",
        )
    content_type = out["content-type"]
    if content_type != CONTENT_TYPE and not _CONTENT_TYPE_RE.fullmatch(content_type):
        raise ContractViolation(
            Reason.BAD_CONTENT_TYPE,
            f"content-type must be {CONTENT_TYPE}, got {out['content-type']!r}",
            field="content-type",
        )
    return out


def _counter(obj: dict[str, Any], name: str, reason: Reason) -> int:
    v = obj[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ContractViolation(Reason.WRONG_TYPE, f"{name} must be an integer", field=name)
    if not 1 <= v <= MAX_COUNTER:
        shown = str(v) if -(10**30) < v < 10**30 else f"a {len(str(abs(v)))}-digit number"
        raise ContractViolation(
            reason, f"{name} must be in 1..{MAX_COUNTER}, got {shown}", field=name
        )
    return v


def _string(obj: dict[str, Any], name: str) -> str:
    v = obj[name]
    if not isinstance(v, str):
        raise ContractViolation(Reason.WRONG_TYPE, f"{name} must be a string", field=name)
    return v


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text) if _RFC3339_RE.fullmatch(text) else None
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise ContractViolation(
            Reason.BAD_TIME,
            f"ce_time must be RFC 3339 with an offset, got {text!r}",
            field="ce_time",
        )
    return t


def decode(
    value: bytes | None,
    headers: Headers | None,
    *,
    key: bytes | None = None,
    now: datetime | None = None,
    max_clock_skew: timedelta = MAX_CLOCK_SKEW,
) -> RecordChange:
    """The :class:`RecordChange` in a Kafka message, or ``ContractViolation``.

    ``key``, when given, must equal the record key. ``now`` (tz-aware; wall clock when
    ``None``) decides what is "in the future".
    """
    if value is None:
        raise ContractViolation(Reason.EMPTY_VALUE, "the message has no value")
    if len(value) > MAX_VALUE_BYTES:
        raise ContractViolation(
            Reason.OVERSIZED, f"value is {len(value)} bytes, the limit is {MAX_VALUE_BYTES}"
        )
    h = _header_map(headers)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(Reason.NOT_JSON, f"value is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ContractViolation(Reason.NOT_OBJECT, "value must be a JSON object")
    if obj.keys() - _VALUE_FIELD_SET:
        extra = sorted(obj.keys() - _VALUE_FIELD_SET)
        raise ContractViolation(Reason.SCHEMA_VIOLATION, f"unknown value fields {extra}")
    missing = _REQUIRED_VALUE_FIELDS - obj.keys()
    if missing:
        raise ContractViolation(
            Reason.MISSING_FIELD, f"value lacks {sorted(missing)}", field=min(missing)
        )

    rt_name = _string(obj, "record_type")
    rt = _RECORD_TYPES.get(rt_name)
    if rt is None:
        raise ContractViolation(
            Reason.UNKNOWN_RECORD_TYPE, f"unknown record type {rt_name!r}", field="record_type"
        )
    op_name = _string(obj, "op")
    op = _OPS.get(op_name)
    if op is None:
        raise ContractViolation(Reason.BAD_OP, f"op must be upsert or delete, got {obj['op']!r}")
    record_id = _string(obj, "record_id")
    record_version = _counter(obj, "record_version", Reason.BAD_VERSION)
    station_seq = _counter(obj, "station_seq", Reason.BAD_SEQ)
    signer = _string(obj, "signer")
    if not _SIGNER_RE.fullmatch(signer):
        raise ContractViolation(Reason.BAD_SIGNER, f"bad signer id {signer[:80]!r}", field="signer")
    key_id = obj.get("key_id")
    if key_id is not None and (not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id)):
        raise ContractViolation(
            Reason.BAD_SIGNER, f"bad key_id {str(key_id)[:80]!r}", field="key_id"
        )
    signature = _string(obj, "signature")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise ContractViolation(Reason.WRONG_TYPE, "data must be an object or null", field="data")

    src = _SOURCE_RE.fullmatch(h["ce_source"])
    if src is None:
        raise ContractViolation(
            Reason.BAD_SOURCE,
            f"ce_source must be station/<5-digit commune code>, got {h['ce_source']!r}",
            field="ce_source",
        )
    expected_type = f"vn.health.{rt_name}.{op_name}"
    if h["ce_type"] != expected_type:
        raise ContractViolation(
            Reason.TYPE_MISMATCH,
            f"ce_type {h['ce_type']!r} but the value is {expected_type!r}",
            field="ce_type",
        )
    if h["ce_subject"] != record_id:
        raise ContractViolation(
            Reason.SUBJECT_MISMATCH,
            f"ce_subject {h['ce_subject']!r} differs from record_id {record_id!r}",
            field="ce_subject",
        )
    ds = _DATASCHEMA_RE.fullmatch(h["ce_dataschema"])
    if ds is None or ds.group(1) != rt_name:
        raise ContractViolation(
            Reason.BAD_DATASCHEMA,
            f"ce_dataschema must be {rt_name}/v<major>, got {h['ce_dataschema']!r}",
            field="ce_dataschema",
        )
    change = _construct(
        {
            "id": h["ce_id"],
            "station": src.group(1),
            "time": _parse_time(h["ce_time"]),
            "record_type": rt,
            "record_id": record_id,
            "op": op,
            "record_version": record_version,
            "station_seq": station_seq,
            "schema_major": int(ds.group(2)),
            "signer": signer,
            "signature": signature,
            "data": data,
            "key_id": key_id,
        }
    )
    expected_key = check_change(change, now=now, max_clock_skew=max_clock_skew)
    if key is not None and key != expected_key.encode():
        raise ContractViolation(
            Reason.KEY_MISMATCH,
            f"Kafka key {key!r} differs from the record key {expected_key!r}",
            field="key",
        )
    return change


_FIELDS: Final = frozenset(RecordChange.model_fields)
_set_attr = object.__setattr__


def _construct(values: dict[str, Any]) -> RecordChange:
    """``RecordChange.model_construct(**values)`` for checked values of every field, without
    its generic walk over the fields (aliases, defaults, a post-init: the model has none;
    a test checks both give the same)."""
    change = RecordChange.__new__(RecordChange)
    _set_attr(change, "__dict__", values)
    _set_attr(change, "__pydantic_fields_set__", set(_FIELDS))
    _set_attr(change, "__pydantic_extra__", None)
    _set_attr(change, "__pydantic_private__", None)
    return change


def to_structured(change: RecordChange) -> dict[str, Any]:
    """CloudEvents structured-mode object: attributes + ``datacontenttype`` + ``data``."""
    return {**attributes(change), "datacontenttype": CONTENT_TYPE, "data": value_dict(change)}


def to_json_line(change: RecordChange) -> bytes:
    """One JSON Lines line (no trailing newline)."""
    return orjson.dumps(to_structured(change))


_STRUCTURED_KEYS: Final = frozenset(
    (*(h.removeprefix("ce_") for h in CE_HEADERS), "datacontenttype", "data")
)


def from_structured(
    obj: Any, *, now: datetime | None = None, max_clock_skew: timedelta = MAX_CLOCK_SKEW
) -> RecordChange:
    """Decode a structured-mode object (same checks and reasons as :func:`decode`)."""
    if not isinstance(obj, dict):
        raise ContractViolation(Reason.NOT_OBJECT, "an event must be a JSON object")
    extra = obj.keys() - _STRUCTURED_KEYS
    if extra:
        raise ContractViolation(Reason.SCHEMA_VIOLATION, f"unknown attributes {sorted(extra)}")
    headers: list[tuple[str, bytes | str | None]] = []
    for name in CE_HEADERS:
        attr = name.removeprefix("ce_")
        if attr in obj:
            v = obj[attr]
            if not isinstance(v, str):
                raise ContractViolation(Reason.BAD_HEADER, f"{attr} must be a string", field=attr)
            headers.append((name, v))
    headers.append(("content-type", obj.get("datacontenttype", CONTENT_TYPE)))
    if "data" not in obj:
        raise ContractViolation(Reason.EMPTY_VALUE, "the event has no data")
    return decode(orjson.dumps(obj["data"]), headers, now=now, max_clock_skew=max_clock_skew)


def from_json_line(
    line: bytes | str, *, now: datetime | None = None, max_clock_skew: timedelta = MAX_CLOCK_SKEW
) -> RecordChange:
    """Decode one JSON Lines line (see :func:`from_structured`)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(Reason.NOT_JSON, f"line is not JSON: {exc}") from None
    return from_structured(obj, now=now, max_clock_skew=max_clock_skew)
