"""A catalog with the same relations as ``sinks.catalog``, built in memory (tests, demos)
or as plain views over Parquet files (benchmarks, until the real catalog is wired).

Relations per record type ``rt``: ``<rt>_changes`` (every change) and ``<rt>`` (current
state: latest ``record_version`` per ``record_id``, deletes removed). Columns: the
:class:`schemas.tier.TierRecord` envelope, ``data`` as a JSON string, and the current payload
model's top-level fields (scalars typed, nested values as JSON strings).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from itertools import count
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from schemas.hierarchy import Hierarchy
from schemas.hierarchy.model import VN_TZ
from schemas.registry import CURRENT_MAJOR, MODELS, RecordType

__all__ = [
    "ENVELOPE",
    "build_catalog",
    "change",
    "changes_table",
    "create_current_views",
    "parquet_views",
    "payload_columns",
]

ENVELOPE: tuple[tuple[str, pa.DataType], ...] = (
    ("event_id", pa.string()),
    ("record_type", pa.string()),
    ("record_id", pa.string()),
    ("record_key", pa.string()),
    ("op", pa.string()),
    ("record_version", pa.int64()),
    ("station_seq", pa.int64()),
    ("schema_major", pa.int64()),
    ("source_major", pa.int64()),
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("received_time", pa.timestamp("us", tz="UTC")),
    ("processed_time", pa.timestamp("us", tz="UTC")),
    ("event_month", pa.string()),
    ("station_code", pa.string()),
    ("station_name", pa.string()),
    ("district_code", pa.string()),
    ("district_name", pa.string()),
    ("province_code", pa.string()),
    ("province_name", pa.string()),
    ("signer", pa.string()),
    ("pseudonymised", pa.bool_()),
    ("data", pa.string()),
)
_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    date: pa.date32(),
}


def _arrow_type(annotation: Any) -> pa.DataType:
    """Arrow type of a payload field: scalars typed, anything else a JSON string."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _arrow_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(args[0]) if len(args) == 1 else pa.string()
    if origin is typing.Literal:
        return _SCALARS.get(type(typing.get_args(annotation)[0]), pa.string())
    if isinstance(annotation, type) and annotation in _SCALARS:
        return _SCALARS[annotation]
    return pa.string()  # lists and nested models: JSON text


def payload_columns(record_type: str) -> list[tuple[str, pa.DataType]]:
    """The flattened payload columns of ``record_type`` (current major)."""
    rt = RecordType(record_type)
    model = MODELS[rt][CURRENT_MAJOR[rt]]
    return [(name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()]


def _value(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if typ == pa.string() and isinstance(v, dict | list):
        return orjson.dumps(v).decode()
    if typ == pa.date32() and isinstance(v, str):
        return date.fromisoformat(v)
    return v


def changes_table(record_type: str, changes: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Arrow table of ``record_type`` changes (TierRecord-shaped dicts, ``data`` a dict)."""
    payload = payload_columns(record_type)
    names = [n for n, _ in ENVELOPE] + [n for n, _ in payload]
    if len(set(names)) != len(names):
        raise ValueError(f"{record_type}: payload field clashes with an envelope column")
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for ch in changes:
        data = ch.get("data")
        for n, _t in ENVELOPE:
            v = ch.get(n)
            if n == "data":
                v = orjson.dumps(data).decode() if data is not None else None
            cols[n].append(v)
        for n, t in payload:
            cols[n].append(_value(data.get(n) if data else None, t))
    schema = pa.schema(list(ENVELOPE) + payload)
    return pa.table({n: pa.array(cols[n], type=schema.field(n).type) for n in names}, schema)


_CURRENT = """CREATE OR REPLACE VIEW {rt} AS
SELECT * EXCLUDE (_rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY record_id
                               ORDER BY record_version DESC, event_time DESC) AS _rn
  FROM {rt}_changes
) WHERE _rn = 1 AND op = 'upsert'"""


def create_current_views(con: duckdb.DuckDBPyConnection) -> None:
    """``<rt>`` current-state views over existing ``<rt>_changes`` relations."""
    for rt in RecordType:
        con.execute(_CURRENT.format(rt=rt.value))


def build_catalog(
    con: duckdb.DuckDBPyConnection, changes: Iterable[Mapping[str, Any]]
) -> duckdb.DuckDBPyConnection:
    """Create every ``<rt>_changes`` table (empty when no change) and ``<rt>`` view."""
    by_type: dict[str, list[Mapping[str, Any]]] = {rt.value: [] for rt in RecordType}
    for ch in changes:
        by_type[str(ch["record_type"])].append(ch)
    for rt, rows in by_type.items():
        table = changes_table(rt, rows)
        con.register(f"_arrow_{rt}", table)
        con.execute(f"CREATE OR REPLACE TABLE {rt}_changes AS SELECT * FROM _arrow_{rt}")
        con.unregister(f"_arrow_{rt}")
    create_current_views(con)
    return con


def parquet_views(con: duckdb.DuckDBPyConnection, root: str, tier: str) -> None:
    """Plain views over the layout ``<root>/<tier>/province=PP/record_type=RT/month=M/*.parquet``
    (a stand-in for ``sinks.catalog.open_catalog``)."""
    for rt in RecordType:
        glob = f"{root}/{tier}/province=*/record_type={rt.value}/month=*/*.parquet"
        try:
            con.execute(
                f"CREATE OR REPLACE VIEW {rt.value}_changes AS SELECT * EXCLUDE "
                f"(province, month) FROM read_parquet('{glob}', hive_partitioning = true, "
                "union_by_name = true) "
            )
            con.execute(f"SELECT * FROM {rt.value}_changes LIMIT 0").fetchall()
        except duckdb.Error:
            table = changes_table(rt.value, [])
            con.register(f"_empty_{rt.value}", table)
            con.execute(
                f"CREATE OR REPLACE VIEW {rt.value}_changes AS "
                f"SELECT * EXCLUDE (record_type), record_type FROM _empty_{rt.value}"
            )
    create_current_views(con)


_SEQ = count(1)


def change(
    h: Hierarchy,
    record_type: str,
    record_id: str,
    data: Mapping[str, Any] | None,
    station: str,
    event_time: datetime,
    *,
    received_time: datetime | None = None,
    version: int = 1,
    op: str = "upsert",
    pseudonymised: bool = False,
) -> dict[str, Any]:
    """A TierRecord-shaped change placed in the hierarchy valid at ``event_time``."""
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=VN_TZ)
    pl = h.lookup(station, event_time)
    n = next(_SEQ)
    return {
        "event_id": f"ev-{n:012d}",
        "record_type": record_type,
        "record_id": record_id,
        "record_key": record_id.split(":")[0],
        "op": op,
        "record_version": version,
        "station_seq": n,
        "schema_major": CURRENT_MAJOR[RecordType(record_type)],
        "source_major": CURRENT_MAJOR[RecordType(record_type)],
        "event_time": event_time.astimezone(UTC),
        "received_time": (received_time or event_time).astimezone(UTC),
        "processed_time": (received_time or event_time).astimezone(UTC),
        "event_month": event_time.astimezone(VN_TZ).strftime("%Y-%m"),
        "station_code": pl.station.code,
        "station_name": pl.station.name,
        "district_code": pl.district.code,
        "district_name": pl.district.name,
        "province_code": pl.province.code,
        "province_name": pl.province.name,
        "signer": "hw-test",
        "pseudonymised": pseudonymised,
        "data": None if op == "delete" else dict(data or {}),
    }
