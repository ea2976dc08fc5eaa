"""The wire codec: :class:`RecordChange` <-> Kafka message (CloudEvents 1.0, binary mode).

Headers: ``ce_specversion`` (``1.0``), ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``,
``ce_dataschema``, ``ce_subject`` and ``content-type: application/json``. Value: a JSON
object with exactly ``record_type, record_id, op, record_version, station_seq, signer,
signature, data``. Key: the record key (UTF-8).

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
    MAX_CLOCK_SKEW,
    SPECVERSION,
    Op,
    RecordChange,
    check_change,
    format_time,
)
from schemas.reasons import ContractViolation, Reason
from schemas.registry import RecordType, record_key

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
VALUE_FIELDS: Final = (
    "record_type",
    "record_id",
    "op",
    "record_version",
    "station_seq",
    "signer",
    "signature",
    "data",
)
_REQUIRED_VALUE_FIELDS: Final = frozenset(VALUE_FIELDS) - {"data"}
_VALUE_FIELD_SET: Final = frozenset(VALUE_FIELDS)
_SOURCE_RE = re.compile(r"^station/([0-9]{5})$")
_DATASCHEMA_RE = re.compile(r"^([a-z_]+)/v([1-9][0-9]{0,2})$")
_SIGNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
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
    """The value object (record-change fields and data) as JSON-shaped dict."""
    return {
        "record_type": change.record_type.value,
        "record_id": change.record_id,
        "op": change.op.value,
        "record_version": change.record_version,
        "station_seq": change.station_seq,
        "signer": change.signer,
        "signature": change.signature,
        "data": change.data,
    }


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


def _header_map(headers: Headers | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in headers or ():
        if name in out:
            raise ContractViolation(Reason.BAD_HEADER, f"header {name} appears twice", field=name)
        if raw is None:
            raise ContractViolation(Reason.BAD_HEADER, f"header {name} has no value", field=name)
        if isinstance(raw, bytes | bytearray | memoryview):
            try:
                out[name] = bytes(raw).decode()
            except UnicodeDecodeError:
                raise ContractViolation(
                    Reason.BAD_HEADER, f"header {name} is not UTF-8", field=name
                ) from None
        else:
            out[name] = raw
    for name in REQUIRED_HEADERS:
        if name not in out:
            raise ContractViolation(Reason.MISSING_HEADER, f"header {name} is missing", field=name)
    if out["ce_specversion"] != SPECVERSION:
        raise ContractViolation(
            Reason.BAD_HEADER,
            f"ce_specversion must be {SPECVERSION}, got {out['ce_specversion']!r}",
            field="ce_specversion",
        )
    ctype = out["content-type"].split(";", 1)[0].strip().lower()
    if ctype != CONTENT_TYPE:
        raise ContractViolation(
            Reason.BAD_CONTENT_TYPE,
            f"content-type must be {CONTENT_TYPE}, got {out['content-type']!r}",
            field="content-type",
        )
    return out


def _positive_int(obj: dict[str, Any], name: str, reason: Reason) -> int:
    v = obj[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ContractViolation(Reason.WRONG_TYPE, f"{name} must be an integer", field=name)
    if v < 1:
        raise ContractViolation(reason, f"{name} must be >= 1, got {v}", field=name)
    return v


def _string(obj: dict[str, Any], name: str) -> str:
    v = obj[name]
    if not isinstance(v, str):
        raise ContractViolation(Reason.WRONG_TYPE, f"{name} must be a string", field=name)
    return v


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text) if "T" in text else None
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
    op = _OPS.get(_string(obj, "op"))
    if op is None:
        raise ContractViolation(Reason.BAD_OP, f"op must be upsert or delete, got {obj['op']!r}")
    record_id = _string(obj, "record_id")
    record_version = _positive_int(obj, "record_version", Reason.BAD_VERSION)
    station_seq = _positive_int(obj, "station_seq", Reason.BAD_SEQ)
    signer = _string(obj, "signer")
    if not _SIGNER_RE.match(signer):
        raise ContractViolation(Reason.BAD_SIGNER, f"bad signer id {signer!r}", field="signer")
    signature = _string(obj, "signature")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise ContractViolation(Reason.WRONG_TYPE, "data must be an object or null", field="data")

    src = _SOURCE_RE.match(h["ce_source"])
    if src is None:
        raise ContractViolation(
            Reason.BAD_SOURCE,
            f"ce_source must be station/<5-digit commune code>, got {h['ce_source']!r}",
            field="ce_source",
        )
    expected_type = f"vn.health.{rt_name}.{op.value}"
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
    ds = _DATASCHEMA_RE.match(h["ce_dataschema"])
    if ds is None or ds.group(1) != rt_name:
        raise ContractViolation(
            Reason.BAD_DATASCHEMA,
            f"ce_dataschema must be {rt_name}/v<major>, got {h['ce_dataschema']!r}",
            field="ce_dataschema",
        )
    change = RecordChange.model_construct(
        id=h["ce_id"],
        station=src.group(1),
        time=_parse_time(h["ce_time"]),
        record_type=rt,
        record_id=record_id,
        op=op,
        record_version=record_version,
        station_seq=station_seq,
        schema_major=int(ds.group(2)),
        signer=signer,
        signature=signature,
        data=data,
    )
    check_change(change, now=now, max_clock_skew=max_clock_skew)
    if key is not None and key != record_key(rt, record_id).encode():
        raise ContractViolation(
            Reason.KEY_MISMATCH,
            f"Kafka key {key!r} differs from the record key {record_key(rt, record_id)!r}",
            field="key",
        )
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
