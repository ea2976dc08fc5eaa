"""The columns of every store: tier records, live aggregates, dead letters.

One declaration feeds both the Parquet writer (Arrow types) and the catalog views (DuckDB
types), so a file and the view over it always agree. Tier record files hold every
:class:`schemas.tier.TierRecord` field except ``data``, then ``data`` as a JSON string (the
after-image), then one column per top-level field of the record type's current payload model:
scalars (str, int, float, bool, date, datetime, literals, enums) typed, under the field's own
name; nested models, lists and dicts as JSON strings. National files hold the fields of
:class:`schemas.national.NationalRecord` and the allow-listed payload fields of
``schemas.national.NATIONAL_FIELDS`` (:func:`national_columns`), nothing else. Pure: no Kafka,
no I/O.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, Literal, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel

from schemas.national import (
    NATIONAL_FIELDS,
    PERSON_QI_COLUMNS,
    Derived,
    Keep,
    NationalRecord,
    Nested,
)
from schemas.national import out_name as national_out_name
from schemas.registry import CURRENT_MAJOR, RecordType, model_for
from schemas.tier import TierRecord

__all__ = [
    "AGGREGATE_COLUMNS",
    "DLQ_COLUMNS",
    "NATIONAL_BASE_COLUMNS",
    "PERSON_QI",
    "SIGNOFF_COLUMNS",
    "TIER_BASE_COLUMNS",
    "Column",
    "arrow_schema",
    "base_columns",
    "national_columns",
    "payload_columns",
    "store_columns",
    "tier_columns",
]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: name, Arrow type, DuckDB type, and ``json`` when it holds JSON text."""

    name: str
    arrow: pa.DataType
    duckdb: str
    json: bool = False


STRING = ("VARCHAR", pa.string())
_SCALARS: dict[type, tuple[str, pa.DataType]] = {
    str: STRING,
    bool: ("BOOLEAN", pa.bool_()),
    int: ("BIGINT", pa.int64()),
    float: ("DOUBLE", pa.float64()),
    date: ("DATE", pa.date32()),
    datetime: ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
}


def _col(name: str, kind: tuple[str, pa.DataType], json: bool = False) -> Column:
    return Column(name, kind[1], kind[0], json)


def _strip(annotation: Any) -> Any:
    """Remove Optional/Annotated wrappers; None when it is not one scalar shape."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _strip(args[0]) if len(args) == 1 else None
    return annotation


def _kind_of(annotation: Any) -> tuple[str, pa.DataType] | None:
    """The scalar kind of a payload field's annotation; None for nested/list/dict."""
    ann = _strip(annotation)
    if ann is None:
        return None
    if get_origin(ann) is Literal:
        values = get_args(ann)
        kinds = {_SCALARS.get(type(v)) for v in values}
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(ann, type):
        if issubclass(ann, Enum):
            return STRING
        if issubclass(ann, BaseModel):
            return None
        for py, kind in _SCALARS.items():  # bool before int: bool is an int subclass
            if ann is py:
                return kind
    return None


def _envelope(model: type[BaseModel]) -> tuple[Column, ...]:
    """The fields of an envelope model in model order, ``data`` as JSON text in its place."""
    return tuple(
        (
            _col(name, STRING, json=True)
            if name == "data"
            else _col(name, _kind_of(field.annotation) or STRING)
        )
        for name, field in model.model_fields.items()
    )


#: TierRecord fields in model order, ``data`` as JSON text in its place.
TIER_BASE_COLUMNS: tuple[Column, ...] = _envelope(TierRecord)
#: NationalRecord fields in model order (the national tier's envelope allow-list).
NATIONAL_BASE_COLUMNS: tuple[Column, ...] = _envelope(NationalRecord)


@cache
def payload_columns(record_type: str) -> tuple[Column, ...]:
    """Flattened columns of ``record_type``'s current payload model, in model order."""
    rt = RecordType(record_type)
    model = model_for(rt, CURRENT_MAJOR[rt])
    base = {c.name for c in TIER_BASE_COLUMNS}
    out = []
    for name, field in model.model_fields.items():
        if name in base:  # a payload field never shadows an envelope column
            name = f"data_{name}"
        kind = _kind_of(field.annotation)
        out.append(_col(name, kind) if kind else _col(name, STRING, json=True))
    return tuple(out)


@cache
def tier_columns(record_type: str) -> tuple[Column, ...]:
    """Every column of a tier store file (and of the catalog views) for ``record_type``."""
    return TIER_BASE_COLUMNS + payload_columns(record_type)


_DERIVED_KINDS: dict[str, tuple[str, pa.DataType]] = {
    "bool": _SCALARS[bool],
    "int": _SCALARS[int],
    "str": STRING,
}


@cache
def national_columns(record_type: str) -> tuple[Column, ...]:
    """Every column of a national store file (and of the national catalog views) for
    ``record_type``: the national envelope, then the allow-listed payload fields in
    ``NATIONAL_FIELDS`` order (a ``Keep`` of a scalar field keeps its type; months,
    pseudonyms and links are text; nested values JSON text). Rules naming a field the current
    payload model does not have (an older major's) give no column."""
    rt = RecordType(record_type)
    fields = model_for(rt, CURRENT_MAJOR[rt]).model_fields
    out = []
    for name, rule in NATIONAL_FIELDS[rt.value].items():
        if isinstance(rule, Derived):
            out.append(_col(rule.out, _DERIVED_KINDS[rule.kind]))
            continue
        if name not in fields:
            continue
        if isinstance(rule, Keep):
            kind = _kind_of(fields[name].annotation)
            out.append(_col(name, kind) if kind else _col(name, STRING, json=True))
        elif isinstance(rule, Nested):
            out.append(_col(name, STRING, json=True))
        else:  # Pseudonym, Month: text
            out.append(_col(national_out_name(name, rule), STRING))
    return NATIONAL_BASE_COLUMNS + tuple(out)


def base_columns(tier: str) -> tuple[Column, ...]:
    """The envelope columns of the ``tier`` store's record files (every record type's)."""
    return NATIONAL_BASE_COLUMNS if tier == "national" else TIER_BASE_COLUMNS


def store_columns(tier: str, record_type: str) -> tuple[Column, ...]:
    """The columns of ``record_type``'s files in the ``tier`` store."""
    return national_columns(record_type) if tier == "national" else tier_columns(record_type)


_QI_KINDS: dict[str, tuple[str, pa.DataType]] = {
    "str": STRING,
    "int": _SCALARS[int],
    "date": _SCALARS[date],
}
#: The k-anonymous person release (``sinks.national``): ``schemas.national.PERSON_QI_COLUMNS``.
PERSON_QI: tuple[Column, ...] = tuple(_col(n, _QI_KINDS[k]) for n, k in PERSON_QI_COLUMNS)


#: Live aggregates: one row per update seen on ``aggregates.live`` (``value`` NULL = tombstone).
AGGREGATE_COLUMNS: tuple[Column, ...] = (
    _col("unit", STRING),
    _col("period", STRING),
    _col("element", STRING),
    _col("value", ("DOUBLE", pa.float64())),
    _col("updated_at", _SCALARS[datetime]),
    _col("kafka_topic", STRING),
    _col("kafka_partition", ("INTEGER", pa.int32())),
    _col("kafka_offset", _SCALARS[int]),
)

_HEADERS = pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))

#: Dead letters: the source coordinates from the ``tuyen_*`` headers, the original bytes,
#: then what a replay needs (key, all headers) and the DLQ message's own coordinates.
DLQ_COLUMNS: tuple[Column, ...] = (
    _col("reason", STRING),
    _col("message", STRING),
    _col("stage", STRING),
    _col("topic", STRING),
    _col("partition", ("INTEGER", pa.int32())),
    _col("offset", _SCALARS[int]),
    _col("rejected_at", _SCALARS[datetime]),
    _col("value", ("BLOB", pa.binary())),
    _col("key", ("BLOB", pa.binary())),
    _col("headers", ("STRUCT(key VARCHAR, value BLOB)[]", _HEADERS)),
    _col("dlq_topic", STRING),
    _col("dlq_partition", ("INTEGER", pa.int32())),
    _col("dlq_offset", _SCALARS[int]),
)


#: Sign-off decisions (``schemas.signoff``) as the ``signoff`` sink stores them, verified:
#: the decision's fields, then when the broker received it (when it took effect) and where.
SIGNOFF_COLUMNS: tuple[Column, ...] = (
    _col("id", STRING),
    _col("action", STRING),
    _col("period", STRING),
    _col("province", STRING),
    _col("station", STRING),
    _col("unit", STRING),
    _col("approver", STRING),
    _col("key_id", STRING),
    _col("signed_time", _SCALARS[datetime]),
    _col("reason", STRING),
    _col("signature", STRING),
    _col("received_time", _SCALARS[datetime]),
    _col("kafka_topic", STRING),
    _col("kafka_partition", ("INTEGER", pa.int32())),
    _col("kafka_offset", _SCALARS[int]),
)


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a store file with ``columns``."""
    return pa.schema([pa.field(c.name, c.arrow) for c in columns])
