"""Compaction: merge the small files of closed partitions into one, idempotently.

A directory (hive partition) is *closed* when its month (``month=``, the month of ``day=``,
or of ``period=``) is before ``before_month`` (default: the current month in Vietnam).
Only files older than ``min_file_age_s`` are taken, so a file a sink may still be rewriting
(an open segment) is never touched. For each closed directory with at least ``min_files``
such files — and always every file compaction wrote itself, whatever its age:

1. read them (union by name: older files lacking a newer optional column are fine),
2. deduplicate — tier stores on ``event_id`` (the copy the catalog's ``<rt>_changes``
   keeps: the earliest ``processed_time``; the national tier's copies have none and are
   alike), the DLQ on its own coordinates, live aggregates to the latest row per
   ``(unit, period, element)``,
3. write ``<topic>+merging+<digest>.parquet`` atomically (digest = hash of the input names,
   so a re-run after a crash writes the same name),
4. only then remove the inputs (an older merged file among them),
5. rename it to ``<topic>+merged+<digest>.parquet`` (``sinks.catalog_sql.MERGED_MARK``);

and then, per tier and record type of the root,

6. when the root's merged files of that record type are not exactly those its current-state
   file covers, write a new one — ``<tier>/current/record_type=<rt>/current2+<digest>.parquet``
   (``sinks.catalog_sql.state_name``: ``<digest>`` names the merged files it covers), the latest
   row of each record (deletes included) over those files with its record-id hash
   (``sinks.catalog_sql.RID_HASH``), in the hash's order, atomically —
7. and remove the other current-state files of that record type.

The current views read a current-state file only when its name matches the merged files
they list (``sinks.catalog_sql._current_sql``), with the files it does not cover ranked against
it; any other state — a crash between any two steps, a merged file rewritten by a later run,
a late event — reads every row instead, or the files not covered beside it: exact in every
state, so no ``+merging+`` step is needed here. A crash between 6 and 7 leaves an older file
that no listing matches; the next run removes it.

The catalog's change views read the merged file of a folder that holds nothing else as it
is (merge-on-read, ``sinks.catalog.snapshot``) and deduplicate every other file. That is
exact because a folder never holds two merged files with a row in common: the new file is a
``+merging+`` file, deduplicated with the rest, until its inputs are gone. A reader may see
a row twice between 3 and 5 (merging file and inputs), never in two merged files, and never
in neither. Running it twice changes nothing the second time; a run after a crash between 4
and 5 finishes the rename.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.hierarchy import VN_TZ
from sinks.catalog_sql import MERGED_MARK, RID_HASH, STATE_DIR, state_name, state_sql
from sinks.config import CompactConfig
from sinks.erasure import ErasedWrites, WriteJob
from sinks.exceptions import CompactionError
from sinks.purge import expire_dlq
from sinks.store import AGGREGATES_DIR, DLQ_DIR, SIGNOFF_DIR, TIER_DIRS, Store

__all__ = ["CompactReport", "compact", "merged_name"]

logger = logging.getLogger(__name__)

#: A merged file not yet published (steps 3 to 5): the catalog reads it as any other file.
MERGING_MARK = "+merging+"
_MONTH_OF = re.compile(r"(?:^|/)(?:month|day|period)=([0-9]{4}-[0-9]{2})")


@dataclass
class CompactReport:
    """What one run did."""

    directories: int = 0
    files_in: int = 0
    files_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    merged: list[str] = field(default_factory=list)
    dlq_files_expired: int = 0
    states: list[str] = field(default_factory=list)
    state_rows: int = 0
    state_cpu_s: float = 0.0  # steps 6-7 (this process's CPU, DuckDB's threads included)


def merged_name(inputs: list[str]) -> str:
    """``<topic>+merged+<digest>.parquet`` for a set of input file names."""
    names = sorted(n.rsplit("/", 1)[-1] for n in inputs)
    topics = {n.split("+", 1)[0] for n in names}
    topic = topics.pop() if len(topics) == 1 else "mixed"
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return f"{topic}{MERGED_MARK}{digest}.parquet"


def _own(path: str) -> bool:
    """Written by compaction (merged, or about to be)."""
    name = path.rsplit("/", 1)[-1]
    return MERGED_MARK in name or MERGING_MARK in name


def _publish(store: Store, source: str, target: str) -> None:
    """Rename ``source`` to ``target`` (local: atomic, then the folder fsynced; object
    stores: copy, then delete — a reader meanwhile sees both, deduplicated together)."""
    if not store.local:
        store.fs.mv(source, target)
        return
    Path(source).replace(target)
    fd = os.open(target.rsplit("/", 1)[0], os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dedupe_sql(relative_dir: str, columns: list[str]) -> str:
    top = relative_dir.split("/", 1)[0]
    if top == AGGREGATES_DIR:
        return (
            "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY unit, period, element "
            "ORDER BY updated_at DESC NULLS LAST, kafka_offset DESC) = 1 "
            "ORDER BY unit, element"
        )
    if top == SIGNOFF_DIR:
        return (
            "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY id ORDER BY "
            "kafka_offset) = 1 ORDER BY received_time, kafka_offset"
        )
    if top == DLQ_DIR:
        return (
            "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY dlq_topic, dlq_partition, "
            "dlq_offset ORDER BY rejected_at) = 1 ORDER BY dlq_topic, dlq_partition, dlq_offset"
        )
    # the catalog's order of an event's copies (sinks.catalog_sql): the national tier's files
    # have no processed_time nor event_time (its copies are alike: any is kept)
    first = "processed_time" if "processed_time" in columns else "event_id"
    ordered = "event_time, event_id" if "event_time" in columns else "event_id"
    return (
        "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY event_id "
        f"ORDER BY {first}) = 1 ORDER BY {ordered}"
    )


def _merge_dir(
    store: Store, relative_dir: str, paths: list[str], report: CompactReport, erasure: ErasedWrites
) -> None:
    name = paths[0].rsplit("/", 1)[-1]
    if len(paths) == 1 and MERGING_MARK in name:  # a crash between steps 4 and 5: step 5
        _publish(store, paths[0], store.path(relative_dir, name.replace(MERGING_MARK, MERGED_MARK)))
        return
    tables = [pq.read_table(p, filesystem=store.fs) for p in paths]
    t = pa.concat_tables(tables, promote_options="permissive")
    con = duckdb.connect()
    try:
        con.register("t", t)
        sql = _dedupe_sql(relative_dir, t.column_names)
        merged = con.sql(sql).to_arrow_table().cast(t.schema)
    finally:
        con.close()
    target = store.path(relative_dir, merged_name(paths))
    pending = target.replace(MERGED_MARK, MERGING_MARK)
    kept = erasure.write([WriteJob(store, relative_dir, pending, merged)])[0]  # sinks.erasure
    for p in paths:  # only after the merged rows are durable
        if p != pending:
            store.delete(p)
    if kept:  # (0: every row was of erased persons, nothing to publish)
        _publish(store, pending, target)  # once no other merged file of the folder is left
    report.directories += 1
    report.files_in += len(paths)
    report.files_out += 1
    report.rows_in += t.num_rows
    report.rows_out += merged.num_rows
    report.merged.append(target)
    logger.info(
        "compacted dir=%s files=%d rows_in=%d rows_out=%d",
        relative_dir,
        len(paths),
        t.num_rows,
        merged.num_rows,
    )


def compact(
    config: CompactConfig, *, now: datetime | None = None, erasure: ErasedWrites | None = None
) -> CompactReport:
    """Merge the small files of every closed directory under ``config.store_root`` (after
    expiring the dead letters beyond ``config.dlq_retention_days``, when set)."""
    store = Store.open(config.store_root, create=False)
    erasure = erasure or ErasedWrites()
    expired = 0
    if config.dlq_retention_days is not None:
        expired = expire_dlq(store, config.dlq_retention_days, now=now)
    before = config.before_month or (now or datetime.now(VN_TZ)).astimezone(VN_TZ).strftime("%Y-%m")
    cutoff = time.time() - config.min_file_age_s
    by_dir: dict[str, list[str]] = {}
    for info in store.list_files():
        relative = info.path[len(store.base) + 1 :]
        directory = relative.rsplit("/", 1)[0] if "/" in relative else ""
        m = _MONTH_OF.search(directory)
        if m is None or m.group(1) >= before:
            continue
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        if mtime > cutoff and not _own(info.path):  # its own files: always (one merged file)
            continue
        by_dir.setdefault(directory, []).append(info.path)
    report = CompactReport(dlq_files_expired=expired)
    for directory, paths in sorted(by_dir.items()):
        merging = any(MERGING_MARK in p.rsplit("/", 1)[-1] for p in paths)
        done = len(paths) == 1 and MERGED_MARK in paths[0].rsplit("/", 1)[-1]
        if done or (len(paths) < config.min_files and not merging):
            continue
        try:
            _merge_dir(store, directory, paths, report, erasure)
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raise CompactionError(f"compaction of {directory} failed: {exc}") from exc
    started = time.process_time()
    try:
        _write_states(store, report, erasure)
    except (OSError, pa.ArrowException, duckdb.Error) as exc:
        raise CompactionError(f"current-state files of {store.base} failed: {exc}") from exc
    report.state_cpu_s = time.process_time() - started
    return report


_RT = "record_type="


def _write_states(store: Store, report: CompactReport, erasure: ErasedWrites) -> None:
    """Steps 6 and 7 for every tier and record type of the root."""
    merged: dict[tuple[str, str], list[str]] = {}
    states: dict[tuple[str, str], list[str]] = {}
    for info in store.list_files():
        parts = info.path[len(store.base) + 1 :].split("/")
        if parts[0] not in TIER_DIRS or len(parts) < 4 or not parts[2].startswith(_RT):
            continue
        if parts[1] == STATE_DIR and len(parts) == 4:
            states.setdefault((parts[0], parts[2][len(_RT) :]), []).append(info.path)
        elif parts[1].startswith("province=") and len(parts) == 5 and MERGED_MARK in parts[4]:
            merged.setdefault((parts[0], parts[2][len(_RT) :]), []).append(info.path)
    for key in sorted(merged.keys() | states.keys()):
        tier, rt = key
        have = states.get(key, [])
        target = None
        if key in merged:
            target = store.path(tier, STATE_DIR, f"{_RT}{rt}", state_name(merged[key]))
            if target not in have:
                _write_state(store, tier, merged[key], target, report, erasure)  # 6.
        for old in have:  # 7. (every file of a record type without merged files)
            if old != target:
                store.delete(old)


def _write_state(
    store: Store,
    tier: str,
    merged: list[str],
    target: str,
    report: CompactReport,
    erasure: ErasedWrites,
) -> None:
    tables = [pq.read_table(p, filesystem=store.fs) for p in sorted(merged)]
    t = pa.concat_tables(tables, promote_options="permissive")
    del tables
    con = duckdb.connect()
    try:
        con.register("t", t)
        state = con.sql(state_sql(tier, "t")).to_arrow_table()
        state = state.cast(t.schema.append(pa.field(RID_HASH, pa.uint64())))
    finally:
        con.close()
    # through the erasure register, like the merged files: a purge that registered after the
    # merged files were read is applied here (sinks.erasure; 0 rows kept: no file, the views
    # then rank every row)
    directory = target.rsplit("/", 1)[0][len(store.base) + 1 :]
    erasure.write([WriteJob(store, directory, target, state)])
    report.states.append(target)
    report.state_rows += state.num_rows
    logger.info(
        "current state written path=%s files=%d rows=%d", target, len(merged), state.num_rows
    )
