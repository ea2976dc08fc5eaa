"""Kafka messages → Arrow tables, one per store directory (hive partition). Pure: no I/O.

Messages are anything shaped like ``confluent_kafka.Message`` (see :class:`MessageLike`).
Each encoder returns ``{relative directory: table}``; a message that cannot be stored where
it belongs (not JSON, missing fields, wrong types) becomes a dead-letter row under
``dlq/reason=<reason>/day=<day>`` with its original bytes, stage ``sink``: bad input never
stops a sink. Dead-letter rows made here take the message timestamp as ``rejected_at`` so a
replay produces identical files.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

import orjson
import pyarrow as pa
from pydantic import ValidationError

from schemas.dlq import (
    H_MESSAGE,
    H_REASON,
    H_REJECTED_AT,
    H_SOURCE_OFFSET,
    H_SOURCE_PARTITION,
    H_SOURCE_TOPIC,
    H_STAGE,
    header_value,
)
from schemas.reasons import Reason
from schemas.registry import RecordType
from schemas.tier import TierRecord
from sinks.columns import AGGREGATE_COLUMNS, DLQ_COLUMNS, Column, arrow_schema, tier_columns
from sinks.store import AGGREGATES_DIR, DLQ_DIR, safe_value

__all__ = [
    "Encoded",
    "Encoder",
    "MessageLike",
    "encode_aggregates",
    "encode_dlq",
    "encoder_for",
    "tier_encoder",
]

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]] | None
Encoded = dict[str, pa.Table]
Encoder = Callable[[Sequence["MessageLike"]], Encoded]

_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_RT_VALUES = frozenset(rt.value for rt in RecordType)
_TS = pa.timestamp("us", tz="UTC")


class MessageLike(Protocol):
    """The part of ``confluent_kafka.Message`` the encoders read."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers: ...
    def timestamp(self) -> tuple[int, int]: ...


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _array(values: list[Any], col: Column) -> pa.Array:
    """One column; temporal values arrive as ISO text and are parsed by Arrow."""
    if pa.types.is_timestamp(col.arrow) or pa.types.is_date(col.arrow):
        return pa.array(values, pa.string()).cast(col.arrow)
    return pa.array(values, col.arrow)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# ---- dead letters made by the sink itself ----------------------------------------------------


def _dead_row(msg: MessageLike, reason: str, message: str) -> dict[str, Any]:
    ts = msg.timestamp()[1]
    return {
        "reason": reason,
        "message": message[:2000],
        "stage": "sink",
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "rejected_at": _ms_iso(ts),
        "value": msg.value(),
        "key": msg.key(),
        "headers": [{"key": k, "value": v} for k, v in msg.headers() or ()],
        "dlq_topic": msg.topic(),
        "dlq_partition": msg.partition(),
        "dlq_offset": msg.offset(),
    }


def _dlq_dir(reason: str, rejected_at: str) -> str:
    day = rejected_at[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", rejected_at) else "unknown"
    return f"{DLQ_DIR}/reason={safe_value(reason)}/day={day}"


def _dlq_tables(rows: Iterable[dict[str, Any]]) -> Encoded:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_dlq_dir(row["reason"], row["rejected_at"] or "")].append(row)
    return {d: _table(DLQ_COLUMNS, rs) for d, rs in groups.items()}


def _table(columns: tuple[Column, ...], rows: list[dict[str, Any]]) -> pa.Table:
    arrays = [_array([r.get(c.name) for r in rows], c) for c in columns]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(columns))


def _merge(into: Encoded, more: Encoded) -> None:
    for d, t in more.items():
        into[d] = pa.concat_tables([into[d], t]) if d in into else t


# ---- tier records -------------------------------------------------------------------------


def _wire_type(col: Column) -> pa.DataType:
    """How a column arrives in JSON: temporal values as ISO text, the rest as themselves."""
    if pa.types.is_timestamp(col.arrow) or pa.types.is_date(col.arrow):
        return pa.string()
    return col.arrow


def _struct(rows: list[Any], columns: list[tuple[str, Column]]) -> dict[str, pa.Array]:
    """Scalar columns of JSON objects, converted in one C++ pass (``pa.array`` of a struct)."""
    if not columns:
        return {}
    st = pa.struct([pa.field(src, _wire_type(col)) for src, col in columns])
    arr = pa.array(rows, type=st)
    out = {}
    for i, (_src, col) in enumerate(columns):
        field = arr.field(i)
        out[col.name] = field if field.type == col.arrow else field.cast(col.arrow)
    return out


def _json_column(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else orjson.dumps(v) for v in values], pa.binary()).cast(
        pa.string()
    )


@cache
def _tier_plan(
    record_type: str,
) -> tuple[list[tuple[str, Column]], list[tuple[str, Column]], list[tuple[str, Column]]]:
    """(envelope scalars, payload scalars, payload JSON columns) as (source key, column)."""
    columns = tier_columns(record_type)
    n_base = len(TierRecord.model_fields)
    base = [(c.name, c) for c in columns[:n_base] if not c.json]
    payload = [(c.name[5:] if c.name.startswith("data_") else c.name, c) for c in columns[n_base:]]
    return base, [p for p in payload if not p[1].json], [p for p in payload if p[1].json]


def _tier_table(record_type: str, rows: list[dict[str, Any]]) -> pa.Table:
    base, scalars, nested = _tier_plan(record_type)
    datas = [r.get("data") or {} for r in rows]
    arrays = _struct(rows, base)
    arrays["data"] = _json_column([r.get("data") for r in rows])
    arrays.update(_struct(datas, scalars))
    for src, col in nested:
        arrays[col.name] = _json_column([d.get(src) for d in datas])
    columns = tier_columns(record_type)
    return pa.Table.from_arrays([arrays[c.name] for c in columns], schema=arrow_schema(columns))


def tier_encoder(tier: str) -> Encoder:
    """The encoder of the ``tier`` store (``district``, ``province`` or ``national``)."""

    def encode(messages: Sequence[MessageLike]) -> Encoded:
        groups: dict[tuple[str, str, str], list[tuple[MessageLike, dict[str, Any]]]] = defaultdict(
            list
        )
        dead: list[dict[str, Any]] = []
        for msg in messages:
            raw = msg.value()
            if raw is None:
                dead.append(_dead_row(msg, Reason.EMPTY_VALUE, "tier record without a value"))
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                dead.append(_dead_row(msg, Reason.NOT_JSON, str(exc)))
                continue
            if not isinstance(rec, dict):
                dead.append(_dead_row(msg, Reason.NOT_OBJECT, "tier record is not an object"))
                continue
            rt, prov, month = (
                rec.get("record_type"),
                rec.get("province_code"),
                rec.get("event_month"),
            )
            if rt not in _RT_VALUES:
                dead.append(_dead_row(msg, Reason.UNKNOWN_RECORD_TYPE, f"record_type={rt!r}"))
            elif not isinstance(prov, str) or not prov:
                dead.append(_dead_row(msg, Reason.MISSING_FIELD, "province_code missing"))
            elif not isinstance(month, str) or not _MONTH.match(month):
                dead.append(_dead_row(msg, Reason.BAD_FORMAT, f"event_month={month!r}"))
            else:
                groups[(safe_value(prov), str(rt), month)].append((msg, rec))
        out: Encoded = {}
        for (prov, rt, month), items in groups.items():
            directory = f"{tier}/province={prov}/record_type={rt}/month={month}"
            try:
                out[directory] = _tier_table(rt, [rec for _, rec in items])
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                pass
            good: list[dict[str, Any]] = []  # slow path: isolate the bad rows
            for msg, rec in items:
                try:
                    TierRecord.model_validate(rec)
                    _tier_table(rt, [rec])
                    good.append(rec)
                except ValidationError as exc:
                    dead.append(_dead_row(msg, Reason.SCHEMA_VIOLATION, str(exc)))
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                    dead.append(_dead_row(msg, Reason.WRONG_TYPE, str(exc)))
            if good:
                out[directory] = _tier_table(rt, good)
        if dead:
            logger.warning("sink dead letters tier=%s count=%d", tier, len(dead))
            _merge(out, _dlq_tables(dead))
        return out

    return encode


# ---- live aggregates ------------------------------------------------------------------------


def encode_aggregates(messages: Sequence[MessageLike]) -> Encoded:
    """``aggregates.live``: key ``unit|period|element``; value a JSON number, or an object with
    ``value`` (and optionally ``updated_at``), or null (a tombstone: the key is gone)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dead: list[dict[str, Any]] = []
    for msg in messages:
        parts = (msg.key() or b"").decode("utf-8", "replace").split("|")
        if len(parts) != 3 or not all(parts):
            dead.append(
                _dead_row(msg, Reason.BAD_FORMAT, "aggregate key is not unit|period|element")
            )
            continue
        raw = msg.value()
        value: Any = None
        updated: Any = None
        if raw is not None:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                dead.append(_dead_row(msg, Reason.NOT_JSON, str(exc)))
                continue
            if isinstance(parsed, dict):
                value, updated = parsed.get("value"), parsed.get("updated_at")
            else:
                value = parsed
            if isinstance(value, bool) or not isinstance(value, int | float):
                dead.append(_dead_row(msg, Reason.WRONG_TYPE, f"aggregate value {value!r}"))
                continue
        if not isinstance(updated, str):
            updated = _ms_iso(msg.timestamp()[1])
        groups[f"{AGGREGATES_DIR}/period={safe_value(parts[1])}"].append(
            {
                "unit": parts[0],
                "period": parts[1],
                "element": parts[2],
                "value": None if value is None else float(value),
                "updated_at": updated,
                "kafka_topic": msg.topic(),
                "kafka_partition": msg.partition(),
                "kafka_offset": msg.offset(),
            }
        )
    out: Encoded = {}
    for directory, rows in groups.items():
        try:
            out[directory] = _table(AGGREGATE_COLUMNS, rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # an unparsable updated_at: use Kafka time
            for row in rows:
                row["updated_at"] = None
            out[directory] = _table(AGGREGATE_COLUMNS, rows)
    if dead:
        _merge(out, _dlq_tables(dead))
    return out


# ---- dead letters from the stream ------------------------------------------------------------


def encode_dlq(messages: Sequence[MessageLike]) -> Encoded:
    """``station.changes.dlq``: original bytes, key and headers, plus the ``tuyen_*`` fields."""
    rows = []
    for msg in messages:
        headers = msg.headers()
        ts_iso = _ms_iso(msg.timestamp()[1])
        rejected = header_value(headers, H_REJECTED_AT) or ts_iso
        part = header_value(headers, H_SOURCE_PARTITION)
        off = header_value(headers, H_SOURCE_OFFSET)
        rows.append(
            {
                "reason": header_value(headers, H_REASON) or "unknown",
                "message": header_value(headers, H_MESSAGE),
                "stage": header_value(headers, H_STAGE),
                "topic": header_value(headers, H_SOURCE_TOPIC),
                "partition": int(part) if part and part.lstrip("-").isdigit() else None,
                "offset": int(off) if off and off.lstrip("-").isdigit() else None,
                "rejected_at": rejected,
                "value": msg.value(),
                "key": msg.key(),
                "headers": [{"key": k, "value": v} for k, v in headers or ()],
                "dlq_topic": msg.topic(),
                "dlq_partition": msg.partition(),
                "dlq_offset": msg.offset(),
            }
        )
    try:
        return _dlq_tables(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an unparsable rejected_at header
        for row, msg in zip(rows, messages, strict=True):
            row["rejected_at"] = _ms_iso(msg.timestamp()[1])
        return _dlq_tables(rows)


def encoder_for(kind: str, tier: str | None = None) -> Encoder:
    """The encoder of a sink kind: ``tier`` (with its tier), ``aggregates`` or ``dlq`` (the
    ``signoff`` sink's verifies decisions: :func:`sinks.signoff.encode.signoff_encoder`)."""
    if kind == "tier":
        if tier is None:
            raise ValueError("a tier sink needs its tier")
        return tier_encoder(tier)
    if kind == "aggregates":
        return encode_aggregates
    if kind == "dlq":
        return encode_dlq
    raise ValueError(f"unknown sink kind {kind!r}")
