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

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

from schemas.hierarchy import reference_dir
from schemas.registry import RecordType
from sinks.columns import AGGREGATE_COLUMNS, DLQ_COLUMNS, PERSON_QI, Column, store_columns
from sinks.exceptions import CatalogError
from sinks.national import QI_DIR
from sinks.store import AGGREGATES_DIR, DLQ_DIR, TIER_DIRS, Store, safe_value

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


#: (dedupe order of one event's copies, order of a record's versions) for record-level tiers
#: and for the national tier (which has no exact times: its version rank orders versions).
_ORDER = {
    False: ("processed_time", "record_version DESC, event_time DESC, event_id DESC"),
    True: ("event_id", "record_version DESC, event_id DESC"),
}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed_source(columns: tuple[Column, ...], glob: str | list[str]) -> str:
    """Rows of ``glob`` (or of several globs) with exactly ``columns`` (cast), even when no
    file matches yet."""
    files = _lit(glob) if isinstance(glob, str) else "[" + ", ".join(map(_lit, glob)) + "]"
    empty = ", ".join(f"CAST(NULL AS {c.duckdb}) AS {_ident(c.name)}" for c in columns)
    cols = ", ".join(f"CAST({_ident(c.name)} AS {c.duckdb}) AS {_ident(c.name)}" for c in columns)
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
        cols = store_columns(tier, rt.value)
        globs = [
            store.glob_uri(tier, prov, f"record_type={rt.value}", "month=*", "*.parquet")
            for prov in provs
        ]
        glob: str | list[str] = globs[0] if len(globs) == 1 else globs
        names = _column_list(cols)
        stmts.append(
            f"CREATE OR REPLACE VIEW raw.{_ident(rt.value)} AS {_typed_source(cols, glob)}"
        )
        first, latest = _ORDER[tier == "national"]
        stmts.append(
            f"CREATE OR REPLACE VIEW {_ident(rt.value + '_changes')} AS SELECT {names} "
            f"FROM raw.{_ident(rt.value)} "
            f"QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first}) = 1"
        )
        joined = tier == "national" and rt is RecordType.PERSON  # + the released QIs
        current = "raw._person_current" if joined else _ident(rt.value)
        stmts.append(
            f"CREATE OR REPLACE VIEW {current} AS SELECT {names} FROM ("
            f"SELECT * FROM raw.{_ident(rt.value)} QUALIFY row_number() OVER ("
            f"PARTITION BY record_id ORDER BY {latest}) = 1"
            ") WHERE op <> 'delete'"
        )
    if tier == "national":
        stmts += _national_release_sql(store)
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
    dlq_glob = store.glob_uri(DLQ_DIR, "reason=*", "day=*", "*.parquet")
    stmts.append(f"CREATE OR REPLACE VIEW raw.dlq AS {_typed_source(DLQ_COLUMNS, dlq_glob)}")
    stmts.append(
        f"CREATE OR REPLACE VIEW dlq AS SELECT {_column_list(DLQ_COLUMNS)} FROM raw.dlq "
        f"QUALIFY row_number() OVER (PARTITION BY {_DLQ_IDENTITY} "
        "ORDER BY rejected_at, dlq_topic, dlq_partition, dlq_offset) = 1"
    )
    return stmts


def _national_release_sql(store: Store) -> list[str]:
    """The national tier's ``person_qi`` view (the k-anonymous release, ``sinks.national``)
    and its ``age_band`` / ``birth_month`` joined into the current ``person`` view: a person
    not (yet) released, or suppressed, has them NULL."""
    glob = store.glob_uri(QI_DIR, "province=*", "*.parquet")
    return [
        f"CREATE OR REPLACE VIEW person_qi AS {_typed_source(PERSON_QI, glob)}",
        "CREATE OR REPLACE VIEW person AS SELECT p.*, q.age_band, q.birth_month "
        "FROM raw._person_current p LEFT JOIN person_qi q USING (record_key)",
    ]


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
        con.execute(
            "CREATE OR REPLACE TABLE population (code VARCHAR, population BIGINT, "
            "valid_from DATE, valid_to DATE)"
        )
        return
    con.execute(
        "CREATE OR REPLACE TABLE population AS SELECT code, population, valid_from, valid_to "
        f"FROM read_csv({_lit(str(pop))}, header = true, columns = "
        "{'code': 'VARCHAR', 'valid_from': 'DATE', 'valid_to': 'DATE', 'population': 'BIGINT'})"
        " ORDER BY code, valid_from NULLS FIRST"
    )


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
