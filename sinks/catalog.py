"""The DuckDB catalog: views over a store root, so analysts query without knowing the layout.

This view interface is the contract with the reports (``sinks.reports``) and with analysts:

- for each record type ``RT`` (``schemas.registry.RecordType``):
  ``RT_changes`` — every change, deduplicated on ``event_id``;
  ``RT`` — the current state: the latest ``record_version`` per ``record_id`` (ties broken
  by ``event_time`` then ``event_id``), records whose latest change is a delete removed.
  Columns of both (in this order): the ``TierRecord`` fields except ``data``, ``data`` (the
  after-image as JSON text), then the flattened payload fields (``sinks.columns``).
  One view spans every province of the tier.
- ``units`` (code, name, tier, kind, valid_from, valid_to),
  ``links`` (child, parent, valid_from, valid_to),
  ``population`` (code, population, valid_from, valid_to) — per station;
- ``aggregates_live`` (unit, period, element, value, updated_at) — latest per key;
- ``signoff`` (the verified approvals, send-backs and locks of ``sinks.signoff``, with the
  broker's ``received_time``) — one row per decision id;
- ``dlq`` (reason, message, stage, topic, partition, offset, rejected_at, value, then key,
  headers, dlq_topic, dlq_partition, dlq_offset for audits and replays): one row per
  rejected input — deduplicated on the input's coordinates (topic, partition, offset; a
  replaying stage writes a second dead letter for the same input), the earliest kept; a dead
  letter without them counts by its own DLQ position.

Every store view is ``read_parquet(glob, hive_partitioning, union_by_name, allow_empty)``
unioned by name with a typed empty row set, so views exist with the right columns on an
empty store, files written before an optional field was added read as NULL for it, and the
glob is expanded at query time (a catalog file stays current as files come and go). The
raw, not deduplicated rows are in schema ``raw`` (``raw.RT``, ``raw.aggregates``,
``raw.dlq``).
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

from schemas.hierarchy import reference_dir
from schemas.registry import RecordType
from sinks.columns import AGGREGATE_COLUMNS, DLQ_COLUMNS, SIGNOFF_COLUMNS, Column, tier_columns
from sinks.exceptions import CatalogError
from sinks.store import AGGREGATES_DIR, DLQ_DIR, SIGNOFF_DIR, TIER_DIRS, Store, safe_value

__all__ = ["CATALOG_TIERS", "build_catalog", "catalog_sql", "open_catalog"]

logger = logging.getLogger(__name__)

CATALOG_TIERS = TIER_DIRS


#: What makes a dead letter one: the rejected input's coordinates (``tuyen_source_*``), so a
#: stage that replays its input and rejects it again (a second dead letter, elsewhere in the
#: DLQ topic) counts once. A dead letter without them (headers missing) is its own identity:
#: its position in the DLQ topic.
_DLQ_UNKNOWN_SOURCE = 'topic IS NULL OR partition IS NULL OR "offset" IS NULL'
_DLQ_IDENTITY = (
    'topic, partition, "offset", '
    f"CASE WHEN {_DLQ_UNKNOWN_SOURCE} THEN dlq_topic END, "
    f"CASE WHEN {_DLQ_UNKNOWN_SOURCE} THEN dlq_partition END, "
    f"CASE WHEN {_DLQ_UNKNOWN_SOURCE} THEN dlq_offset END"
)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: Columns added to the tier files later, and what files written before them read as.
_FALLBACK = {"service_month": "event_month"}


def _read_column(c: Column) -> str:
    expr = _ident(c.name)
    if c.name in _FALLBACK:
        expr = f"coalesce({expr}, {_ident(_FALLBACK[c.name])})"
    return f"CAST({expr} AS {c.duckdb}) AS {_ident(c.name)}"


def _typed_source(columns: tuple[Column, ...], glob: str | list[str]) -> str:
    """Rows of ``glob`` (or of several globs) with exactly ``columns`` (cast), even when no
    file matches yet."""
    files = _lit(glob) if isinstance(glob, str) else "[" + ", ".join(map(_lit, glob)) + "]"
    empty = ", ".join(f"CAST(NULL AS {c.duckdb}) AS {_ident(c.name)}" for c in columns)
    cols = ", ".join(_read_column(c) for c in columns)
    return (
        f"SELECT {cols} FROM (SELECT {empty} WHERE false UNION ALL BY NAME "
        f"SELECT * FROM read_parquet({files}, hive_partitioning = true, "
        "union_by_name = true, allow_empty = true, hive_types_autocast = false))"
    )


def _column_list(columns: tuple[Column, ...]) -> str:
    return ", ".join(_ident(c.name) for c in columns)


def catalog_sql(
    root: str | Path,
    tier: str,
    *,
    province: str | Sequence[str] | None = None,
) -> list[str]:
    """The statements creating every store view for ``tier`` over ``root`` (no reference data).

    ``province`` restricts the record views to that province's folder (a province's own copy),
    or to several provinces' folders (a merged province reading its predecessors').
    """
    if tier not in CATALOG_TIERS:
        raise CatalogError(f"unknown tier {tier!r} (one of {', '.join(CATALOG_TIERS)})")
    store = Store.open(root, create=False)
    if province is None:
        provs = ["province=*"]
    else:
        codes = [province] if isinstance(province, str) else list(province)
        provs = [f"province={safe_value(p)}" for p in codes]
    stmts = ["CREATE SCHEMA IF NOT EXISTS raw"]
    for rt in RecordType:
        cols = tier_columns(rt.value)
        globs = [
            store.glob_uri(tier, prov, f"record_type={rt.value}", "month=*", "*.parquet")
            for prov in provs
        ]
        glob: str | list[str] = globs[0] if len(globs) == 1 else globs
        names = _column_list(cols)
        stmts.append(
            f"CREATE OR REPLACE VIEW raw.{_ident(rt.value)} AS {_typed_source(cols, glob)}"
        )
        stmts.append(
            f"CREATE OR REPLACE VIEW {_ident(rt.value + '_changes')} AS SELECT {names} "
            f"FROM raw.{_ident(rt.value)} "
            "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY processed_time) = 1"
        )
        stmts.append(
            f"CREATE OR REPLACE VIEW {_ident(rt.value)} AS SELECT {names} FROM ("
            f"SELECT * FROM raw.{_ident(rt.value)} QUALIFY row_number() OVER ("
            "PARTITION BY record_id "
            "ORDER BY record_version DESC, event_time DESC, event_id DESC) = 1"
            ") WHERE op <> 'delete'"
        )
    agg_glob = store.glob_uri(AGGREGATES_DIR, "period=*", "*.parquet")
    stmts.append(
        f"CREATE OR REPLACE VIEW raw.aggregates AS {_typed_source(AGGREGATE_COLUMNS, agg_glob)}"
    )
    stmts.append(
        "CREATE OR REPLACE VIEW aggregates_live AS "
        "SELECT unit, period, element, value, updated_at FROM ("
        "SELECT * FROM raw.aggregates QUALIFY row_number() OVER ("
        "PARTITION BY unit, period, element "
        "ORDER BY updated_at DESC NULLS LAST, kafka_offset DESC) = 1"
        ") WHERE value IS NOT NULL"
    )
    signoff_globs = [store.glob_uri(SIGNOFF_DIR, prov, "month=*", "*.parquet") for prov in provs]
    signoff_glob: str | list[str] = signoff_globs[0] if len(signoff_globs) == 1 else signoff_globs
    stmts.append(
        f"CREATE OR REPLACE VIEW raw.signoff AS {_typed_source(SIGNOFF_COLUMNS, signoff_glob)}"
    )
    stmts.append(
        f"CREATE OR REPLACE VIEW signoff AS SELECT {_column_list(SIGNOFF_COLUMNS)} "
        "FROM raw.signoff QUALIFY row_number() OVER (PARTITION BY id ORDER BY kafka_offset) = 1"
    )
    dlq_glob = store.glob_uri(DLQ_DIR, "reason=*", "day=*", "*.parquet")
    stmts.append(f"CREATE OR REPLACE VIEW raw.dlq AS {_typed_source(DLQ_COLUMNS, dlq_glob)}")
    stmts.append(
        f"CREATE OR REPLACE VIEW dlq AS SELECT {_column_list(DLQ_COLUMNS)} FROM raw.dlq "
        f"QUALIFY row_number() OVER (PARTITION BY {_DLQ_IDENTITY} "
        "ORDER BY rejected_at, dlq_topic, dlq_partition, dlq_offset) = 1"
    )
    return stmts


def _hierarchy_file(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (directory / name).exists():
            return directory / name
    raise CatalogError(f"no {stem}.csv or {stem}.csv.gz in {directory}")


def _load_reference(con: duckdb.DuckDBPyConnection, hierarchy: str | Path | None) -> None:
    """Tables ``units``, ``links``, ``population`` from the hierarchy CSV files."""
    directory = Path(hierarchy) if hierarchy is not None else reference_dir()
    units = _hierarchy_file(directory, "units")
    links = _hierarchy_file(directory, "links")
    con.execute(
        "CREATE OR REPLACE TABLE units AS SELECT code, name, tier, kind, valid_from, valid_to "
        f"FROM read_csv({_lit(str(units))}, header = true, all_varchar = false, columns = "
        "{'tier': 'VARCHAR', 'code': 'VARCHAR', 'name': 'VARCHAR', 'kind': 'VARCHAR', "
        "'valid_from': 'DATE', 'valid_to': 'DATE', 'successor': 'VARCHAR'}) "
        "ORDER BY tier, code, valid_from NULLS FIRST"
    )
    con.execute(
        "CREATE OR REPLACE TABLE links AS SELECT child, parent, valid_from, valid_to "
        f"FROM read_csv({_lit(str(links))}, header = true, columns = "
        "{'child': 'VARCHAR', 'parent': 'VARCHAR', 'valid_from': 'DATE', 'valid_to': 'DATE'}) "
        "ORDER BY child, valid_from NULLS FIRST"
    )
    try:
        pop = _hierarchy_file(directory, "population")
    except CatalogError:
        pop = None
    optional = {"under_1": "BIGINT", "women_15_49": "BIGINT", "reference_date": "DATE"}
    if pop is None:
        con.execute(
            "CREATE OR REPLACE TABLE population (code VARCHAR, population BIGINT, "
            "valid_from DATE, valid_to DATE, under_1 BIGINT, women_15_49 BIGINT, "
            "reference_date DATE)"
        )
        return
    header = set(_csv_header(pop))
    types = {"code": "VARCHAR", "valid_from": "DATE", "valid_to": "DATE", "population": "BIGINT"}
    types.update({k: v for k, v in optional.items() if k in header})
    spec = "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in types.items()) + "}"
    extra = ", ".join(
        f"{k}" if k in header else f"CAST(NULL AS {v}) AS {k}" for k, v in optional.items()
    )
    con.execute(
        f"CREATE OR REPLACE TABLE population AS SELECT code, population, valid_from, valid_to, "
        f"{extra} FROM read_csv({_lit(str(pop))}, header = true, types = {spec}) "
        "ORDER BY code, valid_from NULLS FIRST"
    )


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh), [])


def _populate(
    con: duckdb.DuckDBPyConnection,
    root: str | Path,
    tier: str,
    province: str | Sequence[str] | None,
    hierarchy: str | Path | None,
) -> None:
    if "://" in str(root) and not str(root).startswith("file://"):
        con.execute("INSTALL httpfs")  # object-store roots: DuckDB reads them through httpfs
        con.execute("LOAD httpfs")
    for stmt in catalog_sql(root, tier, province=province):
        con.execute(stmt)
    _load_reference(con, hierarchy)


def open_catalog(
    root: str | Path,
    tier: str = "national",
    *,
    province: str | Sequence[str] | None = None,
    hierarchy: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every catalog view over ``root`` for ``tier``.

    ``hierarchy``: a folder with ``units``/``links``/``population`` CSV files (the format of
    ``schemas.hierarchy.io``); default: the project's reference data.
    """
    con = duckdb.connect()
    try:
        _populate(con, root, tier, province, hierarchy)
    except BaseException:
        con.close()
        raise
    return con


def build_catalog(
    root: str | Path,
    out_path: str | Path,
    tier: str = "national",
    *,
    province: str | None = None,
    hierarchy: str | Path | None = None,
) -> Path:
    """Write a DuckDB database file of the catalog views (replacing ``out_path`` atomically)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        _populate(con, root, tier, province, hierarchy)
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    tmp.replace(out)
    logger.info("catalog built out=%s root=%s tier=%s province=%s", out, root, tier, province)
    return out
