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
  broker's ``received_time``) — one row per decision id (a province's decisions are in its
  own root);
- ``dlq``, in the analysts' catalogs (a tier's): **redacted** — per reason, stage, station
  and day, how many inputs were rejected and when (first, last); no key, value, headers or
  message, which may hold the rejected record. It covers the dead rows of the root itself
  (what its own sink could not store); the pipeline's dead letters are in the operators'
  quarantine root.
- ``dlq``, in the operators' catalog (``tier="dlq"``, over the quarantine root): every
  column (reason, message, stage, topic, partition, offset, rejected_at, value, then key,
  headers, dlq_topic, dlq_partition, dlq_offset for audits and replays), one row per
  rejected input — deduplicated on the input's coordinates (topic, partition, offset; a
  replaying stage writes a second dead letter for the same input), the earliest kept; a dead
  letter without them counts by its own DLQ position; and ``dlq_summary``, the redacted view.

The views' SQL — how they read the files, the snapshots and merge-on-read — is
``sinks.catalog_sql``'s; this module makes them on a connection, with the reference tables,
and takes the snapshots (:func:`snapshot`).

**Reach.** A catalog opened by :func:`open_catalog` can read its root and nothing else: after
its views and reference tables are made, DuckDB's ``allowed_directories`` is set to the root,
``enable_external_access`` turned off and the configuration locked (``lock_configuration``),
so ``read_parquet('<another root>/**')``, ``ATTACH``, ``INSTALL`` or changing a setting back
fail. A catalog *file* (:func:`build_catalog`) carries no settings: whoever opens it reads
what their own account or bucket credentials can read, so each owner's root is protected by
its permissions (files 0640, directories 0750) or its bucket policy.

**Portable files.** :func:`build_catalog` writes DuckDB storage version ``v1.4.0``, which the
DuckDB 1.4 and 1.5 command-line tools open (a file of DuckDB 2's own format is refused
there), and views whose paths are relative to the store root: open it from the root's
directory, or run ``SET file_search_path = '<root>'`` first, wherever the root was copied.
Its views read only the directories that had files when it was built (``sinks.catalog_sql``).
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from schemas.hierarchy import reference_dir
from sinks.catalog_sql import (
    _LISTING,
    _SNAPSHOT_TYPE,
    LOSING,
    RID_HASH,
    SHARED,
    SNAPSHOT,
    _classify,
    _decide_sql,
    _lit,
    _root_of,
    catalog_sql,
)
from sinks.exceptions import CatalogError

__all__ = [
    "PORTABLE_STORAGE",
    "build_catalog",
    "lock_to",
    "open_catalog",
    "snapshot",
]

logger = logging.getLogger(__name__)

#: The storage version of catalog files: what the DuckDB 1.4 and 1.5 CLIs read.
PORTABLE_STORAGE = "v1.4.0"
#: A snapshot's tables per record type (:class:`_Decisions` keeps them).
_KEPT = (SHARED, LOSING)


def _hierarchy_file(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (directory / name).exists():
            return directory / name
    raise CatalogError(f"no {stem}.csv or {stem}.csv.gz in {directory}")


def _read_csv(path: Path, types: dict[str, str]) -> str:
    """SQL: the rows of the reference CSV ``path`` (``schemas.hierarchy.io``'s format: a
    header, commas, double quotes), its columns typed by ``types`` (any other: VARCHAR).
    The header is read here, so DuckDB's sniffer (5× the read itself) does not run."""
    spec = ", ".join(f"{_lit(c)}: {_lit(types.get(c, 'VARCHAR'))}" for c in _csv_header(path))
    return (
        f"read_csv({_lit(str(path))}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', columns = {{{spec}}})"
    )


_DATES = {"valid_from": "DATE", "valid_to": "DATE"}


def _load_reference(con: duckdb.DuckDBPyConnection, hierarchy: str | Path | None) -> None:
    """Tables ``units``, ``links``, ``population`` from the hierarchy CSV files."""
    directory = Path(hierarchy) if hierarchy is not None else reference_dir()
    units = _read_csv(_hierarchy_file(directory, "units"), _DATES)
    links = _read_csv(_hierarchy_file(directory, "links"), _DATES)
    con.execute(
        "CREATE OR REPLACE TABLE units AS SELECT code, name, tier, kind, valid_from, valid_to "
        f"FROM {units} ORDER BY tier, code, valid_from NULLS FIRST"
    )
    con.execute(
        "CREATE OR REPLACE TABLE links AS SELECT child, parent, valid_from, valid_to "
        f"FROM {links} ORDER BY child, valid_from NULLS FIRST"
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
    extra = ", ".join(
        f"{k}" if k in header else f"CAST(NULL AS {v}) AS {k}" for k, v in optional.items()
    )
    source = _read_csv(pop, {**_DATES, "population": "BIGINT", **optional})
    con.execute(
        f"CREATE OR REPLACE TABLE population AS SELECT code, population, valid_from, valid_to, "
        f"{extra} FROM {source} ORDER BY code, valid_from NULLS FIRST"
    )


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh), [])


def _local_path(root: str | Path) -> str | None:
    text = str(root)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        return None
    return str(Path(text).resolve())


def lock_to(con: duckdb.DuckDBPyConnection, roots: Sequence[str | Path]) -> None:
    """Let ``con`` read files under ``roots`` and nothing else, for good: DuckDB's
    ``allowed_directories``, ``enable_external_access`` off, ``lock_configuration`` on."""
    allowed = []
    for root in roots:
        local = _local_path(root)
        allowed.append((local if local is not None else str(root)).rstrip("/") + "/")
    con.execute(f"SET allowed_directories = [{', '.join(map(_lit, allowed))}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _roots(root: str | Path | Sequence[str | Path]) -> list[str | Path]:
    return [root] if isinstance(root, str | Path) else list(root)


def _populate(
    con: duckdb.DuckDBPyConnection,
    root: str | Path | Sequence[str | Path],
    tier: str,
    province: str | Sequence[str] | None,
    hierarchy: str | Path | None,
    *,
    portable: bool = False,
) -> None:
    if any("://" in str(r) and not str(r).startswith("file://") for r in _roots(root)):
        con.execute("INSTALL httpfs")  # object-store roots: DuckDB reads them through httpfs
        con.execute("LOAD httpfs")
    elif portable:  # the views' relative paths resolve against the root
        con.execute(f"SET file_search_path = {_lit(str(_local_path(_roots(root)[0])))}")
    if not portable:  # the record views bind over no file (a glob's footers cost ~1 ms each)
        con.execute(f"SET VARIABLE {SNAPSHOT} = CAST($1 AS {_SNAPSHOT_TYPE})", [_classify([])])
    try:
        for stmt in catalog_sql(root, tier, province=province, portable=portable):
            con.execute(stmt)
    finally:
        if not portable:
            con.execute(f"RESET VARIABLE {SNAPSHOT}")
    _load_reference(con, hierarchy)


def open_catalog(
    root: str | Path | Sequence[str | Path],
    tier: str = "national",
    *,
    province: str | Sequence[str] | None = None,
    hierarchy: str | Path | None = None,
    locked: bool = True,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every catalog view over ``root`` for ``tier``,
    able to read ``root`` and nothing else (``locked``, see :func:`lock_to`). ``root`` may
    be several roots of the same tier (every province's, for a national report computed
    from the province tier): each view reads them all.

    ``hierarchy``: a folder with ``units``/``links``/``population`` CSV files (the format of
    ``schemas.hierarchy.io``); default: the project's reference data.
    """
    con = duckdb.connect()
    try:
        _populate(con, root, tier, province, hierarchy)
        if locked:
            lock_to(con, _roots(root))
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def snapshot(
    con: duckdb.DuckDBPyConnection, reads: Iterable[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Within the block, every query on ``con`` reads ONE listing of the root's record files, taken
    on entry: the change views then read merged files as they are (merge-on-read, see
    :func:`sinks.catalog_sql._changes_sql`), and a report's queries all see the same files; where a
    record type has current-state files, which of their rows and of the files they do not cover are
    each record's latest is decided once, on entry (:func:`_decide_sql`) — for the record types
    ``reads`` names (the current views the caller will read; default: every one): the others' views
    rank every row instead (:func:`_undecided`), as exact. A file removed since (compaction) fails a
    query with "file not found" (retry); a file added since is not read. Variables are per
    connection: a ``con.cursor()`` has none until it takes its own, so concurrent requests never
    share one. Nested: the outer snapshot is kept. On a connection that is not an
    :func:`open_catalog` catalog, nothing changes."""
    unset = con.execute(f"SELECT getvariable({_lit(SNAPSHOT)}) IS NULL").fetchone()
    if not (unset and unset[0]):  # the outer block's snapshot holds
        yield con
        return
    try:
        files = [f for (f,) in con.execute(f"FROM {_LISTING}()").fetchall()]
    except duckdb.CatalogException:  # not an in-memory catalog (a catalog file): no views to
        yield con  # read a snapshot
        return
    snap = _classify(files)
    wanted = None if reads is None else set(reads)
    for rt, lists in snap.items():
        if wanted is not None and rt not in wanted:
            _undecided(lists)
    con.execute(f"SET VARIABLE {SNAPSHOT} = CAST($1 AS {_SNAPSHOT_TYPE})", [snap])
    decided: list[str] = []
    try:
        key = _DECISIONS.key(files)
        kept = _DECISIONS.get(key) or {}
        for rt, lists in snap.items():
            if lists["state"]:  # (``rest`` is empty without: every file ``ranked``)
                decided.append(rt)
                if rt in kept:
                    _DECISIONS.load(con, kept[rt])
                else:
                    _decide(con, rt, lists["state"])
        if key is not None and set(decided) - set(kept):
            _DECISIONS.put(key, con, [rt for rt in decided if rt not in kept])
        yield con
    finally:
        con.execute(f"RESET VARIABLE {SNAPSHOT}")
        for rt in decided:
            for table in _KEPT:
                con.execute(f"DROP TABLE IF EXISTS temp.{table}{rt}")


def _undecided(lists: dict[str, list[str]]) -> None:
    """A record type's snapshot lists with no decision: every file ``ranked`` (every row
    ranked per query, as with no state file), none ``state`` or ``rest``."""
    if lists["state"]:
        lists["ranked"] = list(lists["every"])
        lists["state"], lists["rest"], lists["current"] = [], [], []


class _Decisions:
    """The decisions of the last few snapshots (:func:`_decide`), per listing of local files
    whose every file is unchanged (path, inode, size, modification time): a snapshot of the
    same files (the portal's next request) reloads them instead of deciding again. A file
    rewritten in place (a purge, a sink's open segment) changes its key."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._kept: dict[tuple[object, ...], dict[str, dict[str, pa.Table]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(files: list[str]) -> tuple[object, ...] | None:
        """The listing's key, or None (a file not local, or gone: not kept)."""
        out: list[object] = []
        for f in sorted(files):
            local = f.removeprefix("file://")
            if "://" in local:
                return None
            try:
                st = Path(local).stat()
            except OSError:
                return None
            out.append((f, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def get(self, key: tuple[object, ...] | None) -> dict[str, dict[str, pa.Table]] | None:
        if key is None:
            return None
        with self._lock:
            got = self._kept.pop(key, None)
            if got is not None:
                self._kept[key] = got  # the most recent last
            return got

    def put(self, key: tuple[object, ...], con: duckdb.DuckDBPyConnection, rts: list[str]) -> None:
        """Keep ``rts``' tables of ``con`` under ``key``, beside those kept there already (a
        snapshot that read other record types of the same files)."""
        got = {
            rt: {f"{t}{rt}": con.sql(f"FROM temp.{t}{rt}").to_arrow_table() for t in _KEPT}
            for rt in rts
        }
        with self._lock:
            self._kept[key] = {**self._kept.pop(key, {}), **got}
            while len(self._kept) > self.size:
                del self._kept[next(iter(self._kept))]

    @staticmethod
    def load(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            view = f"{name}_kept"
            con.register(view, table)
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS FROM {view}")
            finally:
                con.unregister(view)


_DECISIONS = _Decisions()


def _decide(con: duckdb.DuckDBPyConnection, rt: str, states: list[str]) -> None:
    """Fill ``rt``'s ``SHARED`` and ``LOSING`` tables of this connection from its
    snapshot. The hashes in two state files: each file's hash column is sorted (compaction
    writes it so), so one stable sort of them all is a merge of sorted runs."""
    again = np.array([], dtype=np.uint64)
    if len(states) > 1:
        got = con.execute(f"SELECT {RID_HASH} FROM read_parquet($1)", [states]).fetchnumpy()
        hashes = np.sort(np.asarray(got[RID_HASH], dtype=np.uint64), kind="stable")
        again = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    _Decisions.load(con, {f"{SHARED}{rt}": pa.table({RID_HASH: again})})
    tier = _root_of(states[0]).rsplit("/", 1)[-1]  # <root>/<tier>/current/…
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {LOSING}{rt} AS SELECT _key FROM ({_decide_sql(tier, rt)}) "
        "WHERE NOT _latest"
    )


def build_catalog(
    root: str | Path,
    out_path: str | Path,
    tier: str = "national",
    *,
    province: str | None = None,
    hierarchy: str | Path | None = None,
) -> Path:
    """Write a DuckDB database file of the catalog views (replacing ``out_path`` atomically):
    storage version :data:`PORTABLE_STORAGE`, paths relative to a local root (see the
    module docstring)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(
            f"ATTACH {_lit(str(tmp))} AS catalog (STORAGE_VERSION {_lit(PORTABLE_STORAGE)})"
        )
        con.execute("USE catalog")
        _populate(con, root, tier, province, hierarchy, portable=True)
        con.execute("CHECKPOINT catalog")
        con.execute("USE memory")
        con.execute("DETACH catalog")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    tmp.chmod(0o640)
    tmp.replace(out)
    logger.info("catalog built out=%s root=%s tier=%s province=%s", out, root, tier, province)
    return out
