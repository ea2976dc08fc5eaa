"""Kafka messages → Arrow tables, one per store directory (hive partition). Pure: no I/O.

Messages are anything shaped like ``confluent_kafka.Message`` (see :class:`MessageLike`).
Each encoder returns ``{relative directory: table}``; a message that cannot be stored where
it belongs (not JSON, missing fields, wrong types, numbers beyond int64, anything that raises
while it is converted) becomes a dead-letter row under ``dlq/reason=<reason>/day=<day>`` with
its original bytes, stage ``sink``: no single message stops a sink. Tier records take the
msgspec path of :mod:`sinks.tier_fast` first (``data`` stored as the worker wrote it); what it
does not take whole takes the batch path of :mod:`sinks.tier_batch` over orjson (a row is
stored iff it would be stored alone; only the rows at fault are dead-lettered), which stores
or refuses it as it always did; aggregates and dead letters are converted whole first and,
when that raises, row by row. Dead-letter rows made here take the message timestamp as
``rejected_at`` so a replay produces identical files.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, TypeVar

import numpy as np
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
from sinks.columns import (
    AGGREGATE_COLUMNS,
    DLQ_COLUMNS,
    Column,
    arrow_schema,
    store_columns,
)
from sinks.store import AGGREGATES_DIR, DLQ_DIR, safe_value
from sinks.tier_batch import Rejects, TierPlan, convert, tier_plan
from sinks.tier_fast import MONTH, RECORD_TYPES, Indexed, envelope_model, fast_tables

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
G = TypeVar("G")  # what messages are grouped by

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT64 = (-(2**63), 2**63 - 1)
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
    """A Kafka timestamp (ms) as ISO text; the epoch for one no datetime holds."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00+00:00"


def _array(values: list[Any], col: Column) -> pa.Array:
    """One column; temporal values arrive as ISO text and are parsed by Arrow."""
    if pa.types.is_timestamp(col.arrow) or pa.types.is_date(col.arrow):
        return pa.array(values, pa.string()).cast(col.arrow)
    return pa.array(values, col.arrow)


# ---- dead letters made by the sink itself ----------------------------------------------------


def _failure(exc: BaseException) -> tuple[Reason, str]:
    """The dead-letter reason of an exception raised converting one row."""
    if isinstance(exc, ValidationError):
        return Reason.SCHEMA_VIOLATION, str(exc)
    if isinstance(exc, OverflowError):
        return Reason.OUT_OF_RANGE, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError | TypeError | ValueError):
        return Reason.WRONG_TYPE, f"{type(exc).__name__}: {exc}"
    return Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"


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
    day = rejected_at[:10] if _DAY.fullmatch(rejected_at[:10]) else "unknown"
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


@cache
def _plan(tier: str, record_type: str) -> TierPlan:
    return tier_plan(envelope_model(tier), store_columns(tier, record_type))


def _tier_table(
    tier: str, record_type: str, rows: list[dict[str, Any]]
) -> tuple[pa.Table | None, Rejects]:
    """The batch path (:mod:`sinks.tier_batch`) for the ``tier`` store's ``record_type``
    columns (the national store's from the allow-list, ``schemas.national``)."""
    return convert(_plan(tier, record_type), rows)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic collector held off while a batch is encoded (the encoder makes only
    acyclic objects, freed by reference counting; the collector's passes over a growing heap
    were ~45 % of the encoder's time). Counted, so overlapping sink threads restore it once."""
    global _gc_holders
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled[0] = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled[0]:
                gc.enable()


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = [True]


def _sort_out(
    messages: Sequence[MessageLike],
    place: Callable[[MessageLike], tuple[G, dict[str, Any]] | dict[str, Any]],
) -> tuple[dict[G, list[tuple[MessageLike, dict[str, Any]]]], list[dict[str, Any]]]:
    """Messages grouped by where ``place`` puts them, and the dead rows of those it does not
    (a row ``place`` returns as a dict, or one where it raised)."""
    groups: dict[G, list[tuple[MessageLike, dict[str, Any]]]] = defaultdict(list)
    dead: list[dict[str, Any]] = []
    for msg in messages:
        try:
            placed = place(msg)
        except Exception as exc:
            placed = _dead_row(msg, *_failure(exc))
        if isinstance(placed, dict):
            dead.append(placed)
        else:
            groups[placed[0]].append((msg, placed[1]))
    return groups, dead


def _place(msg: MessageLike) -> tuple[tuple[str, str, str], dict[str, Any]] | dict[str, Any]:
    """(province, record type, month) and the record of a tier message, or its dead row."""
    raw = msg.value()
    if raw is None:
        return _dead_row(msg, Reason.EMPTY_VALUE, "tier record without a value")
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _dead_row(msg, Reason.NOT_JSON, str(exc))
    if not isinstance(rec, dict):
        return _dead_row(msg, Reason.NOT_OBJECT, "tier record is not an object")
    rt, prov, month = rec.get("record_type"), rec.get("province_code"), rec.get("event_month")
    if not isinstance(rt, str) or rt not in RECORD_TYPES:
        return _dead_row(msg, Reason.UNKNOWN_RECORD_TYPE, f"record_type={str(rt)[:100]!r}")
    if not isinstance(prov, str) or not prov:
        return _dead_row(msg, Reason.MISSING_FIELD, "province_code missing")
    if not isinstance(month, str) or not MONTH.fullmatch(month):
        return _dead_row(msg, Reason.BAD_FORMAT, f"event_month={str(month)[:100]!r}")
    return (safe_value(prov), rt, month), rec


def _in_order(parts: Indexed) -> pa.Table:
    """One directory's tables as one, rows in message order."""
    if len(parts) == 1:
        return parts[0][0]
    table = pa.concat_tables([t for t, _ in parts])
    index = np.concatenate([np.asarray(ix, np.int64) for _, ix in parts])
    return table.take(np.argsort(index, kind="stable"))


def tier_encoder(tier: str, *, fast: bool = True) -> Encoder:
    """The encoder of the ``tier`` store (``district``, ``province`` or ``national``: the
    national store takes national records, ``schemas.national``). ``fast`` takes the
    msgspec path first (:mod:`sinks.tier_fast`); without it, every message takes the per-row
    path over orjson (the reference the fast path is tested against)."""
    envelope = envelope_model(tier)

    def encode(messages: Sequence[MessageLike]) -> Encoded:
        with _gc_paused():
            return _encode(messages)

    def _encode(messages: Sequence[MessageLike]) -> Encoded:
        parts: dict[str, Indexed] = defaultdict(list)
        slow = (
            fast_tables(tier, [m.value() for m in messages], parts)
            if fast
            else range(len(messages))
        )
        index = {id(messages[i]): i for i in slow}
        groups, dead = _sort_out([messages[i] for i in slow], _place)
        for (prov, rt, month), items in groups.items():
            table, rejects = _tier_table(tier, rt, [rec for _, rec in items])
            if table is not None:
                stored = [index[id(m)] for j, (m, _) in enumerate(items) if j not in rejects]
                parts[f"{tier}/province={prov}/record_type={rt}/month={month}"].append(
                    (table, stored)
                )
            for i in sorted(rejects):  # the reason: the model's complaint, else the error
                msg, rec = items[i]
                try:
                    envelope.model_validate(rec)
                    exc: Exception = rejects[i]
                except Exception as invalid:
                    exc = invalid
                dead.append(_dead_row(msg, *_failure(exc)))
        out: Encoded = {d: _in_order(ps) for d, ps in parts.items()}
        if dead:
            logger.warning("sink dead letters tier=%s count=%d", tier, len(dead))
            _merge(out, _dlq_tables(dead))
        return out

    return encode


# ---- live aggregates ------------------------------------------------------------------------


def _aggregate_row(msg: MessageLike) -> tuple[str, dict[str, Any]] | dict[str, Any]:
    """(directory, row) of an aggregate message, or its dead row."""
    parts = (msg.key() or b"").decode("utf-8", "replace").split("|")
    if len(parts) != 3 or not all(parts):
        return _dead_row(msg, Reason.BAD_FORMAT, "aggregate key is not unit|period|element")
    raw = msg.value()
    value: Any = None
    updated: Any = None
    if raw is not None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _dead_row(msg, Reason.NOT_JSON, str(exc))
        if isinstance(parsed, dict):
            value, updated = parsed.get("value"), parsed.get("updated_at")
        else:
            value = parsed
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _dead_row(msg, Reason.WRONG_TYPE, f"aggregate value {str(value)[:100]!r}")
    if not isinstance(updated, str):
        updated = _ms_iso(msg.timestamp()[1])
    row = {
        "unit": parts[0],
        "period": parts[1],
        "element": parts[2],
        "value": None if value is None else float(value),  # OverflowError beyond a double
        "updated_at": updated,
        "kafka_topic": msg.topic(),
        "kafka_partition": msg.partition(),
        "kafka_offset": msg.offset(),
    }
    return f"{AGGREGATES_DIR}/period={safe_value(parts[1])}", row


def _one_by_one(
    columns: tuple[Column, ...],
    rows: list[tuple[MessageLike, dict[str, Any]]],
    rescue: Callable[[MessageLike, dict[str, Any], Exception], dict[str, Any] | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows that convert to ``columns``, dead rows): all of ``rows`` when they convert
    together; else each alone, and ``rescue(msg, row, error)`` for one that does not (a fixed
    row to try once more, or None: give up, the row is dead-lettered)."""
    try:
        _table(columns, [r for _, r in rows])
        return [r for _, r in rows], []
    except Exception:  # find the rows at fault below
        pass
    good: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for msg, row in rows:
        try:
            _table(columns, [row])
            good.append(row)
            continue
        except Exception as exc:
            fixed = rescue(msg, row, exc)
            failure = exc
        if fixed is not None:
            try:
                _table(columns, [fixed])
                good.append(fixed)
                continue
            except Exception as exc:
                failure = exc
        dead.append(_dead_row(msg, *_failure(failure)))
    return good, dead


def encode_aggregates(messages: Sequence[MessageLike]) -> Encoded:
    """``aggregates.live``: key ``unit|period|element``; value a JSON number, or an object with
    ``value`` (and optionally ``updated_at``), or null (a tombstone: the key is gone)."""
    groups, dead = _sort_out(messages, _aggregate_row)

    def kafka_time(msg: MessageLike, row: dict[str, Any], exc: Exception) -> dict[str, Any]:
        return {**row, "updated_at": _ms_iso(msg.timestamp()[1])}  # an unparsable updated_at

    out: Encoded = {}
    for directory, rows in groups.items():
        good, bad = _one_by_one(AGGREGATE_COLUMNS, rows, kafka_time)
        if good:
            out[directory] = _table(AGGREGATE_COLUMNS, good)
        dead += bad
    if dead:
        _merge(out, _dlq_tables(dead))
    return out


# ---- dead letters from the stream ------------------------------------------------------------


def _int64(text: str | None) -> int | None:
    """An integer header (partition, offset), if it is one an int64 column holds."""
    if not text or not text.lstrip("-").isascii() or not text.lstrip("-").isdigit():
        return None
    if len(text) > 20:
        return None
    n = int(text)
    return n if _INT64[0] <= n <= _INT64[1] else None


def _dlq_row(msg: MessageLike) -> dict[str, Any]:
    headers = msg.headers()
    rejected = header_value(headers, H_REJECTED_AT) or _ms_iso(msg.timestamp()[1])
    return {
        "reason": header_value(headers, H_REASON) or "unknown",
        "message": header_value(headers, H_MESSAGE),
        "stage": header_value(headers, H_STAGE),
        "topic": header_value(headers, H_SOURCE_TOPIC),
        "partition": _int64(header_value(headers, H_SOURCE_PARTITION)),
        "offset": _int64(header_value(headers, H_SOURCE_OFFSET)),
        "rejected_at": rejected,
        "value": msg.value(),
        "key": msg.key(),
        "headers": [{"key": k, "value": v} for k, v in headers or ()],
        "dlq_topic": msg.topic(),
        "dlq_partition": msg.partition(),
        "dlq_offset": msg.offset(),
    }


def encode_dlq(messages: Sequence[MessageLike]) -> Encoded:
    """``station.changes.dlq``: original bytes, key and headers, plus the ``tuyen_*`` fields.
    A dead letter whose fields do not convert is kept as a sink dead letter of its own."""
    rows: list[tuple[MessageLike, dict[str, Any]]] = []
    dead: list[dict[str, Any]] = []
    for msg in messages:
        try:
            rows.append((msg, _dlq_row(msg)))
        except Exception as exc:
            dead.append(_dead_row(msg, *_failure(exc)))

    def kafka_time(msg: MessageLike, row: dict[str, Any], exc: Exception) -> dict[str, Any]:
        return {**row, "rejected_at": _ms_iso(msg.timestamp()[1])}  # an unparsable header

    good, bad = _one_by_one(DLQ_COLUMNS, rows, kafka_time)
    return _dlq_tables(good + dead + bad)


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
