"""Fault-run checks: the oracle that compares the final stores with what was published, the
assertions every fault run must pass (:class:`StoreContract`) and the measurement file.

What a run checks (:func:`check_stores`), per tier store (district, province, national):

- every valid event is in ``<rt>_changes`` exactly once and nothing else is (by event id;
  the national store has only the keyed hash of each event id, computed here with the run's
  pseudonym key: the only common key);
- the current state (``<rt>`` views) equals the oracle: the latest valid change per record
  (record_version, then event_time, then event_id, as the views order), deletes removed —
  compared by (record type, record id, event id) on district/province, by the event id's
  hash on national;
- physical duplicates: the ``raw`` schema (every Parquet row on disk, not deduplicated)
  holds each event id once per tier — the views deduplicate by construction, so only the raw
  rows show whether the at-least-once stages really produced effectively-once files;
- the DLQ: every bad input, identified by its raw-topic coordinates (partition, offset from
  the delivery report), is there with its expected reason, once (in ``raw.dlq`` and in the
  ``dlq`` view), and nothing else is;
- lag: every consumer group of the pipeline is at the end of its input.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from schemas.registry import RecordType
from schemas.topics import RAW, topic_name
from sinks.catalog import open_catalog
from sinks.catalog_sql import OPERATORS
from tests.faults.pipeline import TIERS, FaultPipeline
from tests.faults.traffic import Expectation

__all__ = [
    "RECORD_TYPES",
    "FaultResult",
    "StoreCheck",
    "StoreContract",
    "check_stores",
    "finish",
    "write_measurement",
]

logger = logging.getLogger(__name__)

RECORD_TYPES = tuple(rt.value for rt in RecordType)


@dataclass
class StoreCheck:
    """What :func:`check_stores` found; the tests assert on its parts."""

    #: per tier: valid event ids absent from every ``<rt>_changes`` view
    missing: dict[str, list[str]] = field(default_factory=dict)
    #: per tier: event ids in the changes views that were not published as valid
    extra: dict[str, list[str]] = field(default_factory=dict)
    #: per tier: rows of the deduplicated views beyond one per event / one per record
    view_duplicates: dict[str, int] = field(default_factory=dict)
    #: per tier: current-state rows differing from the oracle (symmetric difference)
    state_diff: dict[str, list[Any]] = field(default_factory=dict)
    #: per tier: Parquet rows on disk (schema ``raw``) holding an event id already seen
    raw_duplicates: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    raw_rows: dict[str, int] = field(default_factory=dict)
    #: label → (reason in the DLQ, expected reason) where they differ (None: absent)
    dlq_wrong: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: dead letters of other topics (a sink rejecting a tier record)
    dlq_foreign: list[Any] = field(default_factory=list)
    dlq_rows: int = 0
    #: the same dead letter (its DLQ topic coordinates) stored twice on disk
    dlq_raw_duplicates: int = 0
    #: one bad input (raw-topic coordinates) dead-lettered more than once: distinct dead
    #: letters, so the ``dlq`` view (deduplicated on the dead letter's own coordinates)
    #: shows it twice
    dlq_view_duplicates: int = 0
    temp_files: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "current": self.current,
            "raw_rows": self.raw_rows,
            "raw_duplicates": self.raw_duplicates,
            "missing": {t: len(v) for t, v in self.missing.items()},
            "state_diff": {t: len(v) for t, v in self.state_diff.items()},
            "dlq_rows": self.dlq_rows,
            "dlq_wrong": len(self.dlq_wrong),
            "dlq_raw_duplicates": self.dlq_raw_duplicates,
            "dlq_view_duplicates": self.dlq_view_duplicates,
            "temp_files": self.temp_files,
        }


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _union(view: Callable[[str], str], cols: str) -> str:
    """``cols`` of one view per record type (``view(rt)`` names it), with the type first."""
    return " UNION ALL ".join(f"SELECT '{rt}' AS rt, {cols} FROM {view(rt)}" for rt in RECORD_TYPES)


def check_stores(
    root: Path,
    exp: Expectation,
    coords: dict[tuple[int, int], str],
    raw_topic: str,
    national_id: Callable[[str], str],
) -> StoreCheck:
    """Compare the stores under ``root`` with ``exp`` (see the module doc); ``coords`` maps
    raw-topic (partition, offset) to the published label; ``national_id`` an event id to its
    national hash."""
    out = StoreCheck()
    for tier in TIERS:
        rename = national_id if tier == "national" else (lambda eid: eid)
        valid_ids = {rename(eid) for eid in exp.valid}
        current = {k: rename(eid) for k, eid in exp.current().items()}
        con = open_catalog(root, tier)
        try:
            changes = _rows(con, _union(lambda rt: f'"{rt}_changes"', "event_id"))
            got_ids = Counter(eid for _rt, eid in changes)
            out.missing[tier] = sorted(valid_ids - set(got_ids))
            out.extra[tier] = sorted(set(got_ids) - valid_ids)
            state = _rows(con, _union(lambda rt: f'"{rt}"', "record_id, event_id"))
            dups = sum(n - 1 for n in got_ids.values())
            if tier == "national":  # pseudonymised record ids: compare the event ids
                got_state = Counter(eid for _rt, _rid, eid in state)
                want = Counter(current.values())
                out.state_diff[tier] = sorted(((got_state - want) + (want - got_state)).keys())
            else:
                by_record = Counter((rt, rid) for rt, rid, _eid in state)
                dups += sum(n - 1 for n in by_record.values())
                pairs = {((rt, rid), eid) for rt, rid, eid in state}
                out.state_diff[tier] = sorted(pairs ^ set(current.items()))
            out.view_duplicates[tier] = dups
            raw = _rows(
                con,
                "SELECT count(*), count(DISTINCT event_id) FROM ("
                + _union(lambda rt: f'raw."{rt}"', "event_id")
                + ")",
            )[0]
            out.changes[tier] = len(changes)
            out.current[tier] = len(state)
            out.raw_rows[tier] = int(raw[0])
            out.raw_duplicates[tier] = int(raw[0]) - int(raw[1])
        finally:
            con.close()
    con = open_catalog(root, OPERATORS)  # the dead letters whole: the operators' catalog
    try:
        dlq = _rows(con, 'SELECT topic, partition, "offset", reason FROM dlq')
        raw_dlq = _rows(
            con,
            "SELECT count(*), count(DISTINCT (dlq_topic, dlq_partition, dlq_offset)) FROM raw.dlq",
        )[0]
    finally:
        con.close()
    out.dlq_foreign = [r for r in dlq if r[0] != raw_topic]
    ours = [r for r in dlq if r[0] == raw_topic]
    by_coord = Counter((int(p), int(o)) for _t, p, o, _r in ours)
    got_r = {coords.get((int(p), int(o)), f"?{p}:{o}"): str(r) for _t, p, o, r in ours}
    want_r = {label: str(reason.value) for label, reason in exp.bad.items()}
    out.dlq_wrong = {
        k: (got_r.get(k), want_r.get(k))
        for k in set(got_r) | set(want_r)
        if got_r.get(k) != want_r.get(k)
    }
    out.dlq_rows = len(dlq)
    out.dlq_view_duplicates = sum(n - 1 for n in by_coord.values())
    out.dlq_raw_duplicates = int(raw_dlq[0]) - int(raw_dlq[1])
    out.temp_files = sum(1 for _ in root.rglob("*.tmp"))
    return out


@dataclass
class FaultResult:
    """One fault run: what the stores hold, the lag after recovery, what was measured."""

    check: StoreCheck
    lag: dict[str, int] | None
    measured: dict[str, Any]


class StoreContract:
    """The assertions every fault run must pass (a test class per fault inherits them and
    provides a ``result`` fixture that runs the fault once)."""

    def test_no_valid_event_missing_from_any_tier_store(self, result: FaultResult) -> None:
        c = result.check
        assert {t: v[:3] for t, v in c.missing.items() if v} == {}
        assert {t: v[:3] for t, v in c.extra.items() if v} == {}

    def test_current_state_of_every_tier_store_matches_what_was_published(
        self, result: FaultResult
    ) -> None:
        diff = {t: v[:3] for t, v in result.check.state_diff.items() if v}
        assert diff == {}

    def test_no_duplicate_row_in_the_deduplicated_views(self, result: FaultResult) -> None:
        assert result.check.view_duplicates == dict.fromkeys(TIERS, 0)

    def test_each_bad_input_once_in_the_dlq_view(self, result: FaultResult) -> None:
        assert result.check.dlq_view_duplicates == 0, "a bad input shows twice in the dlq view"

    def test_no_duplicate_row_on_disk(self, result: FaultResult) -> None:
        """Physical rows (schema ``raw``): the sinks' deterministic segment files must not
        add a row twice, and a replayed upstream stage must not produce one again."""
        assert result.check.raw_duplicates == dict.fromkeys(TIERS, 0)
        assert result.check.dlq_raw_duplicates == 0
        assert result.check.temp_files == 0

    def test_every_bad_input_in_the_dlq_with_its_reason(self, result: FaultResult) -> None:
        assert dict(sorted(result.check.dlq_wrong.items())[:5]) == {}
        assert result.check.dlq_foreign == []

    def test_lag_back_to_zero(self, result: FaultResult) -> None:
        assert result.lag is not None
        assert result.lag == dict.fromkeys(result.lag, 0)


def finish(
    fp: FaultPipeline, exp: Expectation, artifacts: Path, name: str, measured: dict[str, Any]
) -> FaultResult:
    """After recovery: the lag, the store check, the measurement file."""
    lag = fp.remaining()
    check = check_stores(
        fp.store_root,
        exp,
        fp.publisher.coords,
        topic_name(RAW, fp.prefix),
        fp.national_event_id,
    )
    measured = {"valid": len(exp.valid), "bad": len(exp.bad), **measured, **check.summary()}
    measured["lag"] = lag
    write_measurement(artifacts, name, measured)
    return FaultResult(check, lag, measured)


def write_measurement(artifacts: Path, name: str, data: dict[str, Any]) -> None:
    """Keep what a run measured in ``test-artifacts/faults/<name>.json`` (and the log)."""
    folder = artifacts / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    logger.warning("fault run %s: %s", name, orjson.dumps(data).decode())
