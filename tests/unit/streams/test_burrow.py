"""Burrow's status rules as a pure function: examples for each rule, invariants by hypothesis."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.monitor.burrow import (
    STATUS_NUMBER,
    Commit,
    Status,
    evaluate_group,
    evaluate_partition,
    group_status,
)

ERRORS = {Status.STOP, Status.STALL, Status.REWIND}


def window(*rows: tuple[int, int], start_ms: int = 1_000_000, step_ms: int = 1000) -> list[Commit]:
    """Commits from (offset, lag) rows, ``step_ms`` apart."""
    return [Commit(off, start_ms + i * step_ms, lag) for i, (off, lag) in enumerate(rows)]


def status(
    commits: list[Commit],
    lag: int,
    now: int | None = None,
    ends: tuple[int, ...] = (),
    **kw: Any,
) -> Status:
    now_ms = commits[-1].timestamp_ms if now is None and commits else (now or 0)
    return evaluate_partition(commits, lag, now_ms, broker_offsets=ends, **kw).status


def test_caught_up_is_ok_whatever_the_window() -> None:
    w = window(*[(5, 3)] * 10)  # would be STALL with lag
    assert status(w, 0) is Status.OK
    assert status(w, 2, allowed_lag=2) is Status.OK


def test_stop_when_no_commit_for_longer_than_the_window_span() -> None:
    w = window(*[(i * 10, 50 - i) for i in range(10)])  # moving, lag falling, never zero
    span = w[-1].timestamp_ms - w[0].timestamp_ms
    assert status(w, 60, now=w[-1].timestamp_ms + span) is Status.OK  # not yet: equal
    assert status(w, 60, now=w[-1].timestamp_ms + span + 1) is Status.STOP


def test_no_stop_when_recently_caught_up() -> None:
    """ "Recently" is the end-offset history, not the commit window (Burrow #290)."""
    w = window(*[(i * 10, 0 if i == 7 else 5) for i in range(10)])
    later = w[-1].timestamp_ms + 10**9
    assert status(w, 40, now=later) is Status.STOP  # zero lag at a commit long ago
    assert status(w, 40, now=later, ends=(130, 90)) is Status.OK  # end was at 90 recently
    assert status(w, 40, now=later, ends=(130, 91)) is Status.STOP


def test_consumer_that_died_caught_up_stops_when_data_keeps_arriving() -> None:
    w = window(*[(i, 0) for i in range(10)])  # every commit caught up
    later = w[-1].timestamp_ms + 60_000
    assert status(w, 25, now=later, ends=(9, 9, 20)) is Status.OK  # caught up recently
    assert status(w, 25, now=later, ends=(20, 30, 34)) is Status.STOP


def test_rewind_when_an_offset_went_backwards() -> None:
    w = window((10, 5), (12, 3), (8, 7), (9, 6))
    assert status(w, 6) is Status.REWIND
    # REWIND comes before the zero-lag check: even when the window was caught up once
    w0 = window((10, 0), (12, 3), (8, 7), (9, 6))
    assert status(w0, 6) is Status.REWIND


def test_rewind_recovered_once_past_the_old_offset_again() -> None:
    """A rebalance re-committing a slightly older offset (Burrow >= 1.3.7)."""
    w = window((10, 5), (12, 6), (8, 9), (12, 9))
    assert status(w, 9) is Status.WARN  # no longer REWIND; the other rules apply
    assert status(window((10, 5), (12, 3), (8, 7), (13, 2)), 2) is Status.OK


def test_stop_comes_before_rewind() -> None:
    w = window((10, 5), (8, 7))
    assert status(w, 7, now=w[-1].timestamp_ms + 10_000) is Status.STOP


def test_ok_when_lag_was_zero_in_the_window() -> None:
    w = window((1, 0), *[(1, 4)] * 9)
    assert status(w, 4) is Status.OK


def test_stall_when_committing_the_same_offset_with_lag() -> None:
    assert status(window(*[(7, 3)] * 10), 3) is Status.STALL


def test_warn_when_lag_never_decreases() -> None:
    w = window(*[(i, 2 + i) for i in range(10)])
    assert status(w, 12) is Status.WARN
    w2 = window(*[(i, 5) for i in range(10)])  # moving, lag flat: still never decreasing
    assert status(w2, 5) is Status.WARN


def test_ok_when_lag_decreases_somewhere() -> None:
    w = window(*[(i, 2 + i) for i in range(9)], (20, 3))
    assert status(w, 3) is Status.OK


def test_only_the_last_n_commits_count() -> None:
    old = window(*[(i, 0) for i in range(5)])
    recent = window(*[(7, 3)] * 10, start_ms=old[-1].timestamp_ms + 1000)
    assert status(old + recent, 3) is Status.STALL
    assert status(old + recent, 3, window=15) is Status.OK
    v = evaluate_partition(recent[:4], 3, recent[3].timestamp_ms)
    assert v.complete == 0.4


def test_empty_window_is_ok_incomplete() -> None:
    v = evaluate_partition([], 10, 0)
    assert v.status is Status.OK and v.complete == 0


def test_group_takes_worst_partition_and_reports_errors_as_err() -> None:
    assert group_status([]) is Status.OK
    assert group_status([Status.OK, Status.WARN]) is Status.WARN
    for bad in ERRORS:
        assert group_status([Status.WARN, bad, Status.OK]) is Status.ERR
    st_, verdicts = evaluate_group([(window(*[(7, 3)] * 10), 3, ()), ([], 0, ())], 1_009_000)
    assert st_ is Status.ERR and [v.status for v in verdicts] == [Status.STALL, Status.OK]


def test_status_numbers_are_burrows() -> None:
    """core/protocol/evaluator.go: what Burrow's Prometheus exporter exports."""
    assert [STATUS_NUMBER[s] for s in Status] == list(range(7))
    assert [s.value for s in Status] == [
        "NOTFOUND",
        "OK",
        "WARN",
        "ERR",
        "STOP",
        "STALL",
        "REWIND",
    ]


def test_min_complete_keeps_young_windows_ok() -> None:
    w = window(*[(7, 3)] * 4)
    assert status(w, 3) is Status.STALL
    v = evaluate_partition(w, 3, w[-1].timestamp_ms, min_complete=0.5)
    assert (v.status, v.complete) == (Status.OK, 0.4)
    assert status(window(*[(7, 3)] * 5), 3, min_complete=0.5) is Status.STALL


def test_pure_module_imports_no_kafka_client() -> None:
    code = (
        "import sys, streams.monitor.burrow, streams.monitor.freshness, "
        "streams.monitor.offsets_log, streams.monitor.page\n"
        "bad = [m for m in ('faust', 'confluent_kafka', 'aiokafka') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- invariants ---------------------------------------------------------------------------

commit_rows = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 5_000), st.integers(0, 30)),
    min_size=1,
    max_size=25,
)


def build(rows: list[tuple[int, int, int]]) -> list[Commit]:
    ts = 0
    out = []
    for off, gap, lag in rows:
        ts += gap
        out.append(Commit(off, ts, lag))
    return out


@given(commit_rows, st.integers(0, 40), st.integers(0, 100_000), st.integers(1, 12))
def test_invariants(rows: list[tuple[int, int, int]], lag: int, later: int, n: int) -> None:
    commits = build(rows)
    now = commits[-1].timestamp_ms + later
    s = status(commits, lag, now=now, window=n)
    recent = commits[-n:]
    # decided by the last n commits only
    assert s is status(recent, lag, now=now, window=n)
    if lag == 0:
        assert s is Status.OK
    caught_up = any(c.lag == 0 for c in recent)
    at = next(
        (i for i, (a, b) in enumerate(itertools.pairwise(recent), 1) if b.offset < a.offset), 0
    )
    rewound = at > 0 and all(c.offset < recent[at - 1].offset for c in recent[at:])
    if lag > 0 and rewound and s is not Status.STOP:
        assert s is Status.REWIND
    if lag > 0 and caught_up and not rewound:
        assert s in (Status.OK, Status.STOP)
    if s is Status.STOP:  # stays stopped as time passes
        assert status(commits, lag, now=now + 1 + later, window=n) is Status.STOP
    if s is Status.STALL:
        assert len({c.offset for c in recent}) == 1
    if s is Status.WARN:
        assert len({c.offset for c in recent}) > 1 and not caught_up


@given(st.lists(st.sampled_from(list(Status)), max_size=12))
def test_group_status_invariants(statuses: list[Status]) -> None:
    g = group_status(statuses)
    assert g in {Status.OK, Status.WARN, Status.ERR, Status.NOTFOUND} or not statuses
    assert (g is Status.ERR) == any(s in ERRORS or s is Status.ERR for s in statuses)
    assert (g is Status.OK) == all(s in (Status.OK, Status.NOTFOUND) for s in statuses)
