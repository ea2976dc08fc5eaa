"""The SQL text of the DuckDB catalog (``sinks.catalog``): the statements making its store
views (:func:`catalog_sql`), and the snapshot lists and decisions they read — pure functions
and constants, no DuckDB connection (``sinks.catalog`` runs them on one).

Every store view is ``read_parquet(glob, hive_partitioning, union_by_name, allow_empty)``
unioned by name with a typed empty row set, so views exist with the right columns on an
empty store, files written before an optional field was added read as NULL for it, and the
glob is expanded at query time (a catalog file stays current as files come and go). The
raw, not deduplicated rows are in schema ``raw`` (``raw.RT``, ``raw.aggregates``, and in the
operators' catalog ``raw.dlq``).

**Snapshots and merge-on-read** (in-memory catalogs). Within :func:`sinks.catalog.snapshot`
the record views read ONE listing of the root's record files, taken on entry and held in a
DuckDB variable (per connection: each cursor takes its own) that every scan of every query reads
through ``getvariable``; so all the scans of a query, and all the queries of a report, see
the same files. ``RT_changes`` then reads the merged files (``sinks.compact``) of folders
that hold nothing else as they are and deduplicates only the rest (:func:`_changes_sql`),
and ``RT`` reads compaction's current-state file of the record type when it covers exactly
the merged files listed, ranking again only the records that also have a row elsewhere,
once per snapshot (:func:`_decide_sql`, :func:`_current_sql`; over several roots each
root's own file, the records found in two roots' files ranked again; a catalog restricted
to some provinces reads a root's file only when those provinces hold every merged file of
that root, else it ranks every row).
Without a snapshot, and in a catalog file, every row is deduplicated over the glob, as
listed at query time. Both forms come from the same definitions here.

**Portable SQL** (``portable``: a catalog file's, :func:`sinks.catalog.build_catalog`): DuckDB
1.x SQL, the views' paths relative to the store root. DuckDB 1.x cannot read a glob that
matches no file, so the file's views read only the directories that had files when it was
built; a record type that had none is an empty view until the catalog is built again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from schemas.registry import RecordType
from sinks.columns import (
    AGGREGATE_COLUMNS,
    DLQ_COLUMNS,
    PERSON_QI,
    SIGNOFF_COLUMNS,
    Column,
    store_columns,
)
from sinks.exceptions import CatalogError
from sinks.national import QI_DIR
from sinks.store import AGGREGATES_DIR, DLQ_DIR, SIGNOFF_DIR, TIER_DIRS, Store, safe_value

__all__ = [
    "CATALOG_KINDS",
    "CATALOG_TIERS",
    "LOSING",
    "MERGED_MARK",
    "OPERATORS",
    "RID_HASH",
    "SHARED",
    "SNAPSHOT",
    "STATE_DIR",
    "catalog_sql",
    "state_name",
    "state_sql",
]

CATALOG_TIERS = TIER_DIRS
#: The operators' catalog: the quarantine root's dead letters, every column.
OPERATORS = DLQ_DIR
CATALOG_KINDS = (*TIER_DIRS, OPERATORS)

#: The redacted dead letters: no key, value, headers or message (they may hold the record).
_STATION = (
    "NULLIF(regexp_extract(try(decode(list_filter(headers, lambda h: h.key = 'ce_source')"
    "[1].value)), '^station/([0-9A-Za-z]{1,16})$', 1), '')"
)


def _dlq_summary(source: str) -> str:
    return (
        f"SELECT reason, stage, {_STATION} AS station, CAST(rejected_at AS DATE) AS day, "
        "count(*) AS rejected, min(rejected_at) AS first_rejected_at, "
        f"max(rejected_at) AS last_rejected_at FROM {source} GROUP BY ALL"
    )


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


#: Columns added to the tier files later, and what files written before them read as.
_FALLBACK = {"service_month": "event_month"}


def _read_column(c: Column) -> str:
    expr = _ident(c.name)
    if c.name in _FALLBACK:
        expr = f"coalesce({expr}, {_ident(_FALLBACK[c.name])})"
    return f"CAST({expr} AS {c.duckdb}) AS {_ident(c.name)}"


def _list(globs: list[str]) -> str:
    return _lit(globs[0]) if len(globs) == 1 else "[" + ", ".join(map(_lit, globs)) + "]"


def _typed_source(
    columns: tuple[Column, ...],
    glob: str | list[str],
    *,
    portable: bool = False,
    files_sql: str | None = None,
    keyed: bool = False,
    key_files: str | None = None,
    hive: bool = True,
) -> str:
    """Rows of ``glob`` (or of several globs) with exactly ``columns`` (cast), even when no file
    matches yet. ``portable``: DuckDB 1.x SQL (no ``allow_empty``): ``glob`` must then match files
    (an empty list: no rows). ``files_sql``: read the files this SQL expression lists instead (a
    list of a query's snapshot, :func:`sinks.catalog.snapshot`): then a listed file that is gone
    fails the query (DuckDB reads each entry as a glob: with ``allow_empty`` a vanished file would
    match nothing, silently); the views' globs, read when no snapshot is taken, may match nothing.
    ``keyed``: and ``_key``, each row's position in the files read, or in the list ``key_files``
    (:data:`_KEY`: the file's index in the list, its row number in the file). ``hive``: with the
    folders' ``key=value`` columns (``province``, ``record_type``, ``month``; the declared columns
    are in the files themselves): off, a list may mix folder layouts (record files and current-state
    files)."""
    globs = [glob] if isinstance(glob, str) else glob
    files = files_sql if files_sql is not None else _list(globs)
    empty = ", ".join(f"CAST(NULL AS {c.duckdb}) AS {_ident(c.name)}" for c in columns)
    cols = ", ".join(_read_column(c) for c in columns)
    if portable and not globs:
        return f"SELECT {empty} WHERE false"
    allow_empty = "" if portable else "allow_empty = true, "
    if files_sql is not None:
        allow_empty = (
            f"allow_empty = (getvariable({_lit(SNAPSHOT)}) IS NULL OR len({files_sql}) = 0), "
        )
    if keyed:  # (a list that is empty adds no such column: the empty row set has them)
        empty += ", CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS file_row_number"
        cols += f", {_KEY.format(files=key_files or files)} AS _key"
        allow_empty += "filename = true, file_row_number = true, "
    return (
        f"SELECT {cols} FROM (SELECT {empty} WHERE false UNION ALL BY NAME "
        f"SELECT * FROM read_parquet({files}, hive_partitioning = {str(hive).lower()}, "
        f"union_by_name = true, {allow_empty}hive_types_autocast = false))"
    )


def _column_list(columns: tuple[Column, ...]) -> str:
    return ", ".join(_ident(c.name) for c in columns)


#: In a file's name: written by compaction (``sinks.compact``), its rows deduplicated, and
#: no other merged file of its folder shares a row with it (compaction publishes it so).
MERGED_MARK = "+merged+"
#: The variable holding a query's snapshot of the record files (:func:`sinks.catalog.snapshot`).
SNAPSHOT = "tuyen_files"
#: The table macro listing them (one column, ``file``).
_LISTING = "tuyen_record_files"
#: A record type's files under a tier folder's ``province=…`` folder.
_RECORD_FILES = ("record_type=*", "month=*", "*.parquet")
_RECORD_DIR = re.compile(r"/record_type=([^/]+)/month=[^/]+$")
#: The lists of a snapshot, per record type: ``clean``, the merged files of folders that hold
#: nothing else (read as they are); ``touched``, the merged files of folders that also hold
#: other files, and ``tail``, every other file (deduplicated together); ``every``, all;
#: ``state``, each root's current-state file of the record type that covers exactly the
#: root's merged files listed, and ``rest``, every other file of the record type (of every
#: root) when there is one; ``current``, those two lists one after the other (what the
#: current view reads, its row positions those of the decision); ``ranked``, every file of a
#: record type with no state file (no snapshot: the views' globs).
_SNAPSHOT_PARTS = ("clean", "touched", "tail", "every", "state", "rest", "current", "ranked")
#: A row's position in a snapshot list's files: the file's place in the list, its row number
#: in the file (``filename`` is one value per chunk of rows: the lookup is per chunk). A file
#: name DuckDB reports otherwise than the listing does fails the query (never a wrong row).
_KEY = (
    "CAST(coalesce(list_position({files}, filename), error('file ' || filename "
    "|| ' not in the snapshot listing')) AS BIGINT) * 1099511627776 + file_row_number"
)
#: The table (one per record type, column ``_key``) of the positions (in the ``current``
#: list) of the rows of the state files and of the files not covered that are not their
#: record's latest row: empty in the catalog; within a snapshot, the connection's own
#: temporary table of the same name, which its queries read instead (DuckDB looks up a
#: view's tables in the querying connection's temporary schema first).
LOSING = "tuyen_losing_"
#: The table (one per record type, column ``_record_id_md5``) of the hashes found in more
#: than one state file of a snapshot; a connection's own temporary table, as those.
SHARED = "tuyen_shared_"
#: A current-state file's column of a hash of each row's ``record_id`` (the upper 64 bits of
#: its MD5, from the hex digest: the same in every process and DuckDB version), so the
#: records in several roots' files are found from a small integer column.
RID_HASH = "_record_id_md5"
_RID_HASH_SQL = "CAST('0x' || md5(record_id)[1:16] AS UBIGINT)"
#: A tier's current-state files (``sinks.compact``): ``<tier>/current/record_type=<rt>/
#: current2+<digest>.parquet``, the latest row (deletes included) of every record of the
#: root's merged files of that record type and its :data:`RID_HASH`, ``<digest>`` naming
#: exactly those files. (``current+<digest>``, the form before the hash column, is not
#: read: no listing matches it, and the next compaction replaces it.)
STATE_DIR = "current"
_STATE_MARK = "current2+"
_STATE_FILE = re.compile(
    r"/" + STATE_DIR + r"/record_type=([^/]+)/current2\+([0-9a-f]{16})\.parquet$"
)
_SNAPSHOT_TYPE = (
    "STRUCT("
    + ", ".join(
        f"{rt.value} STRUCT({', '.join(f'{p} VARCHAR[]' for p in _SNAPSHOT_PARTS)})"
        for rt in RecordType
    )
    + ")"
)
_NO_FILES = "[]::VARCHAR[]"


def _snapshot_list(rt: RecordType, part: str, default: str) -> str:
    """SQL: the ``part`` list of ``rt``'s files in the query's snapshot, or ``default`` (the
    views' globs, or no file) when none is taken."""
    field = f"struct_extract(getvariable({_lit(SNAPSHOT)}), {_lit(rt.value)})"
    return f"coalesce(struct_extract({field}, {_lit(part)}), {default})"


def _listing_sql(patterns: list[str]) -> str:
    """SQL: the files of ``patterns``, listed once."""
    return " UNION ALL ".join(f"SELECT file FROM glob({_lit(p)})" for p in patterns)


def _merged_key(path: str) -> str:
    """A merged file's name in a current-state digest: its path from ``province=`` on
    (the same for a local root, an object store's path and DuckDB's URL of it)."""
    return path[path.rindex("/province=") + 1 :]


def state_name(merged: Iterable[str]) -> str:
    """The name of the current-state file covering exactly the merged files ``merged``."""
    keys = "\n".join(sorted(_merged_key(p) for p in merged))
    return f"{_STATE_MARK}{hashlib.sha256(keys.encode()).hexdigest()[:16]}.parquet"


def state_sql(tier: str, source: str) -> str:
    """SQL: the latest row of each record of ``source`` (the current views' order), deletes
    included (a delete hides older versions read beside it), and :data:`RID_HASH`, in its
    order (:func:`sinks.catalog._decide` merges the files' hashes)."""
    latest = _ORDER[tier == "national"][1]
    return (
        f"SELECT *, {_RID_HASH_SQL} AS {RID_HASH} FROM {source} QUALIFY row_number() OVER ("
        f"PARTITION BY record_id ORDER BY {latest}) = 1 ORDER BY {RID_HASH}"
    )


def _root_of(path: str) -> str:
    """The ``<root>/<tier>`` a record file or a current-state file of a listing is under."""
    mark = "/province=" if _STATE_FILE.search(path) is None else f"/{STATE_DIR}/record_type="
    return path[: path.rindex(mark)]


def _classify(files: list[str]) -> dict[str, dict[str, list[str]]]:
    """The snapshot's lists (:data:`_SNAPSHOT_PARTS`) per record type, from one listing
    (of one root or several: each root's state file is matched to that root's merged files)."""
    snap: dict[str, dict[str, list[str]]] = {
        rt.value: {part: [] for part in _SNAPSHOT_PARTS} for rt in RecordType
    }
    folders: dict[str, list[str]] = {}
    states: dict[tuple[str, str], dict[str, str]] = {}  # (root, rt) -> name -> path
    for f in sorted(files):
        m = _STATE_FILE.search(f)
        if m:
            states.setdefault((_root_of(f), m.group(1)), {})[f.rsplit("/", 1)[-1]] = f
            continue
        folders.setdefault(f.rsplit("/", 1)[0], []).append(f)
    per_root: dict[tuple[str, str], dict[str, list[str]]] = {}
    for folder, names in folders.items():
        m = _RECORD_DIR.search(folder)
        if m is None or m.group(1) not in snap:
            continue
        lists = per_root.setdefault((_root_of(names[0]), m.group(1)), {"merged": [], "tail": []})
        merged = [MERGED_MARK in f.rsplit("/", 1)[-1] for f in names]
        for f, is_merged in zip(names, merged, strict=True):
            part = "tail" if not is_merged else "clean" if all(merged) else "touched"
            snap[m.group(1)][part].append(f)
            snap[m.group(1)]["every"].append(f)
            lists["merged" if is_merged else "tail"].append(f)
    for (root, rt), lists in sorted(per_root.items()):
        covered = lists["merged"]
        state = states.get((root, rt), {}).get(state_name(covered)) if covered else None
        snap[rt]["state"] += [state] if state else []
        snap[rt]["rest"] += lists["tail"] if state else covered + lists["tail"]
    for lists in snap.values():
        if not lists["state"]:  # no state file: every file ranked
            lists["ranked"], lists["rest"] = lists["rest"], []
        lists["current"] = lists["state"] + lists["rest"]
    return snap


def _changes_sql(
    rt: RecordType, cols: tuple[Column, ...], globs: list[str], first: str, portable: bool
) -> str:
    """``<rt>_changes``: every change once, the first copy of an event in ``first``'s order.

    Merge-on-read: the ``clean`` files of the query's snapshot are read as they are, the
    ``touched`` and ``tail`` files are deduplicated together (a tie keeps the merged copy).
    That is every row deduplicated, because an event's copies share its folder (province,
    record type, event month) and no two merged files of a folder share a row. Without a
    snapshot (and in a catalog file, ``portable``), every file is tail: every row is
    deduplicated, as the glob lists it at query time."""
    names = _column_list(cols)
    dedupe = f"QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first}"
    if portable:
        return f"SELECT {names} FROM raw.{_ident(rt.value)} {dedupe}) = 1"

    def part(name: str, default: str) -> str:
        return _typed_source(cols, globs, files_sql=_snapshot_list(rt, name, default))

    return (
        f"SELECT {names} FROM ({part('clean', _NO_FILES)}) UNION ALL SELECT {names} FROM ("
        f"SELECT *, false AS _tail FROM ({part('touched', _NO_FILES)}) UNION ALL "
        f"SELECT *, true AS _tail FROM ({part('tail', _list(globs))})) {dedupe}, _tail) = 1"
    )


def _current_sql(
    rt: RecordType, cols: tuple[Column, ...], globs: list[str], latest: str, portable: bool
) -> str:
    """The latest row of each record of ``rt``, deletes included (``<rt>`` drops them).

    Within a snapshot with ``state`` files (``sinks.compact``: each covers exactly its
    root's merged files listed, and holds the latest row of each record over them), the
    snapshot decided once (:func:`_decide_sql`) which rows are each record's latest: the
    state files and the files not covered (``rest``: the months not compacted, late events,
    a compaction in progress, a root without a state file) are read in one scan, but the
    rows that are not (``LOSING``: a state row of a record also in another root's state file,
    or in a file not covered, with a later row there; a row not covered with a later row).
    So each query reads the state files once, and anti-joins positions, not record ids (one
    scan and one join: a semi-join of the winning rows not covered cost another). Without a
    state file (no snapshot, none written, or one that no longer matches the merged files)
    every file is ``ranked``: every row is ranked, as the glob lists it at query time."""
    rank = f"QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY {latest}) = 1"
    if portable:
        return f"SELECT * FROM raw.{_ident(rt.value)} {rank}"
    names = _column_list(cols)
    files = _snapshot_list(rt, "current", _NO_FILES)
    current = _typed_source(cols, globs, files_sql=files, keyed=True, hive=False)
    ranked = _typed_source(cols, globs, files_sql=_snapshot_list(rt, "ranked", _list(globs)))
    return (
        f"SELECT {names} FROM ({current}) c ANTI JOIN (SELECT _key FROM {LOSING}{rt.value}) l "
        f"ON c._key = l._key UNION ALL SELECT * FROM ({ranked}) {rank}"
    )


def _decide_sql(tier: str, rt: str) -> str:
    """A snapshot's decision for ``rt`` in ``tier`` (rows ``_key``, ``_state``, ``_latest``):
    which state rows and which rows of the files not covered are their record's latest row.
    Built when a snapshot decides (not a macro of the catalog: binding one per record type
    cost every opening ~0.08 s).

    Ranked together: every row of the files not covered, and the state rows of the records
    that have a row there or in another state file — found by :data:`RID_HASH` (a record has
    the same hash in every state file, ``SHARED`` holds those in two, and the files not
    covered hash theirs here; another record sharing a hash is ranked too, harmlessly): one
    join of integers. Every other state row is its record's only row: the latest. Positions
    are in the ``current`` list (the state files, then the others), as the view reads them."""
    latest = _ORDER[tier == "national"][1]
    wanted = {"record_id"} | {term.split()[0] for term in latest.split(",")}
    narrow = tuple(c for c in store_columns(tier, rt) if c.name in wanted)
    hashed = Column(RID_HASH, pa.uint64(), "UBIGINT")
    state_files, rest_files, both = (
        _snapshot_list(RecordType(rt), part, _NO_FILES) for part in ("state", "rest", "current")
    )
    state = _typed_source((*narrow, hashed), [], files_sql=state_files, keyed=True, key_files=both)
    rest = _typed_source(narrow, [], files_sql=rest_files, keyed=True, key_files=both)
    # in two state files (:func:`sinks.catalog._decide`)
    shared = f"SELECT {RID_HASH} FROM {SHARED}{rt}"
    names = ", ".join(_ident(c.name) for c in narrow)
    return (
        f"SELECT _key, _state, row_number() OVER (PARTITION BY record_id ORDER BY {latest}) = 1 "
        f"AS _latest FROM (SELECT {names}, _key, true AS _state FROM ({state}) "
        f"WHERE {RID_HASH} IN ({shared} UNION ALL SELECT {_RID_HASH_SQL} FROM ({rest})) "
        f"UNION ALL SELECT {names}, _key, false FROM ({rest}))"
    )


class _Globs:
    """The globs of a catalog's views: absolute (in-memory catalogs, over one root or
    several: a national report reads every province's root), or, for a portable file,
    relative to a local root and limited to those that match files now."""

    def __init__(self, root: str | Path | Sequence[str | Path], portable: bool) -> None:
        roots = [root] if isinstance(root, str | Path) else list(root)
        if not roots or (portable and len(roots) > 1):
            raise CatalogError("a catalog file is over exactly one root")
        self.stores = [Store.open(r, create=False) for r in roots]
        self.store = self.stores[0]
        self.relative = portable and self.store.local
        self.portable = portable

    def __call__(self, *parts: str) -> list[str]:
        if len(self.stores) > 1:
            return [store.glob_uri(*parts) for store in self.stores]
        pattern = "/".join(parts) if self.relative else self.store.glob_uri(*parts)
        if not self.portable:
            return [pattern]
        if self.store.local:
            return [pattern] if any(Path(self.store.base).glob("/".join(parts))) else []
        prefix = "/".join(p for p in parts if "*" not in p and "=" not in p)
        return [pattern] if self.store.list_files(prefix) else []


def catalog_sql(
    root: str | Path | Sequence[str | Path],
    tier: str,
    *,
    province: str | Sequence[str] | None = None,
    portable: bool = False,
) -> list[str]:
    """The statements creating every store view for ``tier`` over ``root`` (no reference data).

    ``tier`` is a store tier (an analysts' catalog) or ``dlq`` (the operators' catalog of
    the quarantine root). ``province`` restricts the record views to that province's folder
    (a province's own copy), or to several provinces' folders (a merged province reading its
    predecessors'). ``portable``: SQL for a catalog file the DuckDB 1.x CLI opens (see the
    module docstring).
    """
    if tier not in CATALOG_KINDS:
        raise CatalogError(f"unknown tier {tier!r} (one of {', '.join(CATALOG_KINDS)})")
    globs = _Globs(root, portable)
    stmts = ["CREATE SCHEMA IF NOT EXISTS raw"]
    dlq_glob = globs(DLQ_DIR, "reason=*", "day=*", "*.parquet")
    dlq_source = _typed_source(DLQ_COLUMNS, dlq_glob, portable=portable)
    deduplicated = (
        f"SELECT {_column_list(DLQ_COLUMNS)} FROM ({dlq_source}) "
        f"QUALIFY row_number() OVER (PARTITION BY {_DLQ_IDENTITY} "
        "ORDER BY rejected_at, dlq_topic, dlq_partition, dlq_offset) = 1"
    )
    if tier == OPERATORS:
        stmts.append(f"CREATE OR REPLACE VIEW raw.dlq AS {dlq_source}")
        stmts.append(f"CREATE OR REPLACE VIEW dlq AS {deduplicated}")
        summary = _dlq_summary("dlq")
        stmts.append(f"CREATE OR REPLACE VIEW dlq_summary AS {summary}")
        if not portable:  # no record views: nothing to list
            stmts.append(
                f"CREATE OR REPLACE MACRO {_LISTING}() AS TABLE "
                "SELECT CAST(NULL AS VARCHAR) AS file WHERE false"
            )
        return stmts
    if province is None:
        provs = ["province=*"]
    else:
        codes = [province] if isinstance(province, str) else list(province)
        provs = [f"province={safe_value(p)}" for p in codes]
    for rt in RecordType:
        cols = store_columns(tier, rt.value)
        rt_globs = [
            g
            for prov in provs
            for g in globs(tier, prov, f"record_type={rt.value}", "month=*", "*.parquet")
        ]
        names = _column_list(cols)
        every = None if portable else _snapshot_list(rt, "every", _list(rt_globs))
        source = _typed_source(cols, rt_globs, portable=portable, files_sql=every)
        stmts.append(f"CREATE OR REPLACE VIEW raw.{_ident(rt.value)} AS {source}")
        first, latest = _ORDER[tier == "national"]
        changes = _changes_sql(rt, cols, rt_globs, first, portable)
        stmts.append(f"CREATE OR REPLACE VIEW {_ident(rt.value + '_changes')} AS {changes}")
        joined = tier == "national" and rt is RecordType.PERSON  # + the released QIs
        current = "raw._person_current" if joined else _ident(rt.value)
        if not portable:  # (the view reads them)
            stmts.append(f"CREATE OR REPLACE TABLE {LOSING}{rt.value} (_key BIGINT)")
            stmts.append(f"CREATE OR REPLACE TABLE {SHARED}{rt.value} ({RID_HASH} UBIGINT)")
        state = _current_sql(rt, cols, rt_globs, latest, portable)
        stmts.append(
            f"CREATE OR REPLACE VIEW {current} AS SELECT {names} FROM ({state}) "
            "WHERE op <> 'delete'"
        )
    if tier == "national":
        stmts += _national_release_sql(globs, portable)
    agg_glob = globs(AGGREGATES_DIR, "period=*", "*.parquet")
    agg_source = _typed_source(AGGREGATE_COLUMNS, agg_glob, portable=portable)
    stmts.append(f"CREATE OR REPLACE VIEW raw.aggregates AS {agg_source}")
    stmts.append(
        "CREATE OR REPLACE VIEW aggregates_live AS "
        "SELECT unit, period, element, value, updated_at FROM ("
        "SELECT * FROM raw.aggregates QUALIFY row_number() OVER ("
        "PARTITION BY unit, period, element "
        "ORDER BY updated_at DESC NULLS LAST, kafka_offset DESC) = 1"
        ") WHERE value IS NOT NULL"
    )
    signoff_globs = [g for prov in provs for g in globs(SIGNOFF_DIR, prov, "month=*", "*.parquet")]
    signoff_source = _typed_source(SIGNOFF_COLUMNS, signoff_globs, portable=portable)
    stmts.append(f"CREATE OR REPLACE VIEW raw.signoff AS {signoff_source}")
    stmts.append(
        f"CREATE OR REPLACE VIEW signoff AS SELECT {_column_list(SIGNOFF_COLUMNS)} "
        "FROM raw.signoff QUALIFY row_number() OVER (PARTITION BY id ORDER BY kafka_offset) = 1"
    )
    summary = _dlq_summary(f"({deduplicated})")
    stmts.append(f"CREATE OR REPLACE VIEW dlq AS {summary}")
    if not portable:
        listing = [g for prov in provs for g in globs(tier, prov, *_RECORD_FILES)]
        # each root's state files (over its whole root: under a province restriction, one
        # matches only when the provinces read hold every merged file of the root)
        listing += globs(tier, STATE_DIR, "record_type=*", "*.parquet")
        stmts.append(f"CREATE OR REPLACE MACRO {_LISTING}() AS TABLE {_listing_sql(listing)}")
    return stmts


def _national_release_sql(globs: _Globs, portable: bool) -> list[str]:
    """The national tier's ``person_qi`` view (the k-anonymous release, ``sinks.national``)
    and its ``age_band`` / ``birth_month`` joined into the current ``person`` view: a person
    not (yet) released, or suppressed, has them NULL."""
    source = _typed_source(PERSON_QI, globs(QI_DIR, "province=*", "*.parquet"), portable=portable)
    return [
        f"CREATE OR REPLACE VIEW person_qi AS {source}",
        "CREATE OR REPLACE VIEW person AS SELECT p.*, q.age_band, q.birth_month "
        "FROM raw._person_current p LEFT JOIN person_qi q USING (record_key)",
    ]
