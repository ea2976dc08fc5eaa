"""Burrow's consumer-status rules, as pure functions of a commit window (no Kafka here).

This module imports neither faust nor confluent_kafka: the collector feeds it a window of
commits, the partition's recent end-offset history, the current lag and a clock value;
tests feed it explicit values (Burrow's own 16 cases are
``tests/unit/streams/test_burrow_cases.py``).

Commit history. Each :class:`Commit` is one offset commit of one group on one partition,
with the broker's commit timestamp and the partition's lag *at that moment* (end offset then
minus the committed offset; ``None`` when the end offset then is unknown, as Burrow's
nullable lag). The collector reads every commit from ``__consumer_offsets`` (as Burrow
does), not periodic samples of the committed offset: a sampled committed offset cannot tell
a consumer that keeps committing the same offset (STALL) from one that stopped committing
(STOP); only the commit timestamps can.

End-offset history (``broker_offsets``): the partition's end offset at the last few
collection intervals (Burrow stores one per ``offset-refresh`` in a ring of ``intervals``).
It answers "was this consumer caught up *recently*": some recent end offset ≤ the last
committed offset. The commit window alone cannot answer it: a consumer that died while
caught up would stay OK for ever while data keeps arriving (Burrow bug #290).

The rules: LinkedIn Burrow's ``calculatePartitionStatus`` (``core/internal/evaluator/
caching.go``, current master, the same since v1.3.7), in this order, first match wins:

1. **OK** when the current lag is ≤ the allowed lag (0 by default).
2. **STOP** when the time since the last commit exceeds the window's span (last commit
   time − first commit time) and the consumer was not recently caught up (no end offset of
   the recent history ≤ the last committed offset).
3. **REWIND** when a committed offset went backwards in the window (first such place) and
   no later commit of the window reached the offset before the rewind again ("rewind
   recovery": a rebalance that re-commits a slightly older offset is not held against the
   consumer once it is past that point again).
4. **OK** when the lag at some commit of the window was ≤ the allowed lag (commits whose lag
   is unknown do not count).
5. **STALL** when every offset in the window is the same (and, by rule 1, there is lag).
6. **WARN** when the lag never decreased from one commit to the next across the window
   (unknown lags skipped).
7. otherwise **OK**.

Completeness (Burrow's ``minimum-complete``): a partition's ``complete`` is the share of
the window holding commits (``len(commits) / window``); below ``min_complete`` the
partition is OK whatever its commits say. An empty window is OK with ``complete`` 0.

How this differs from older Burrow versions: docs/operators.md.

Group level (``evaluateConsumerStatus``): the group takes its worst partition; STOP, STALL
and REWIND report as ERR. ``complete`` is the share of partitions whose window is complete;
``maxlag`` is the partition with the largest current lag; ``totallag`` the sum. A group
that has no committed offset (or does not exist) is NOTFOUND.

Status numbers are Burrow's (``core/protocol/evaluator.go``, what its Prometheus exporter
exports): NOTFOUND 0, OK 1, WARN 2, ERR 3, STOP 4, STALL 5, REWIND 6.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_WINDOW",
    "STATUS_NUMBER",
    "Commit",
    "PartitionVerdict",
    "Status",
    "evaluate_group",
    "evaluate_partition",
    "group_complete",
    "group_status",
    "lag_always_not_zero",
    "lag_not_decreasing",
    "partition_status",
    "recent_lag_zero",
    "rewind_index",
    "rewind_recovered",
    "stalled",
    "stopped",
]

DEFAULT_WINDOW = 10


class Status(StrEnum):
    """Partition and group statuses (Burrow's names)."""

    NOTFOUND = "NOTFOUND"
    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"


#: Burrow's StatusConstant values (also its exporter's ``burrow_kafka_consumer_status``).
STATUS_NUMBER: dict[Status, int] = {
    Status.NOTFOUND: 0,
    Status.OK: 1,
    Status.WARN: 2,
    Status.ERR: 3,
    Status.STOP: 4,
    Status.STALL: 5,
    Status.REWIND: 6,
}


@dataclass(frozen=True, slots=True)
class Commit:
    """One offset commit: the offset, when the broker stored it (ms), the lag at that time
    (None: unknown)."""

    offset: int
    timestamp_ms: int
    lag: int | None


@dataclass(frozen=True, slots=True)
class PartitionVerdict:
    """The status of one partition and how complete its window was (0..1)."""

    status: Status
    complete: float


# -- the rules (Burrow's helper functions, same names in snake case) -------------------------


def lag_always_not_zero(window: Sequence[Commit], allowed_lag: int = 0) -> bool:
    """No commit of the window had a known lag ≤ ``allowed_lag`` (``isLagAlwaysNotZero``)."""
    return not any(c.lag is not None and c.lag <= allowed_lag for c in window)


def rewind_index(window: Sequence[Commit]) -> int:
    """Index of the first commit whose offset is below the previous one; -1 when none."""
    for i in range(1, len(window)):
        if window[i].offset < window[i - 1].offset:
            return i
    return -1


def rewind_recovered(window: Sequence[Commit], index: int) -> bool:
    """Some commit from ``index`` on reached the offset committed just before the rewind."""
    before = window[index - 1].offset
    return any(c.offset >= before for c in window[index:])


def stopped(window: Sequence[Commit], now_ms: int) -> bool:
    """Time since the last commit > the window's span (``checkIfOffsetsStopped``)."""
    first, last = window[0].timestamp_ms, window[-1].timestamp_ms
    return (now_ms - last) > (last - first)


def stalled(window: Sequence[Commit]) -> bool:
    """Every committed offset of the window is the same."""
    return all(c.offset == window[0].offset for c in window)


def lag_not_decreasing(window: Sequence[Commit]) -> bool:
    """The known lag never decreased from one commit to the next."""
    last: int | None = None
    for c in window:
        if c.lag is None:
            continue
        if last is not None and c.lag < last:
            return False
        last = c.lag
    return True


def recent_lag_zero(window: Sequence[Commit], broker_offsets: Sequence[int]) -> bool:
    """Some recent end offset of the partition ≤ the last committed offset: the consumer was
    caught up within the end-offset history (``checkIfRecentLagZero``)."""
    last = window[-1].offset
    return any(end <= last for end in broker_offsets)


def partition_status(
    window: Sequence[Commit],
    broker_offsets: Sequence[int],
    current_lag: int,
    now_ms: int,
    allowed_lag: int = 0,
) -> Status:
    """Rules 1–7 (Burrow's ``calculatePartitionStatus``) over a non-empty window."""
    if current_lag <= allowed_lag:
        return Status.OK
    if stopped(window, now_ms) and not recent_lag_zero(window, broker_offsets):
        return Status.STOP
    index = rewind_index(window)
    if index > 0 and not rewind_recovered(window, index):
        return Status.REWIND
    if lag_always_not_zero(window, allowed_lag):
        if stalled(window):
            return Status.STALL
        if lag_not_decreasing(window):
            return Status.WARN
    return Status.OK


def evaluate_partition(
    commits: Sequence[Commit],
    current_lag: int,
    now_ms: int,
    *,
    broker_offsets: Sequence[int] = (),
    window: int = DEFAULT_WINDOW,
    allowed_lag: int = 0,
    min_complete: float = 0.0,
) -> PartitionVerdict:
    """The last ``window`` commits (oldest first) of one partition: status and completeness."""
    if window < 1:
        raise ValueError("window must be at least 1")
    recent = list(commits[-window:])
    complete = len(recent) / window
    if not recent or complete < min_complete:
        return PartitionVerdict(Status.OK, complete)
    status = partition_status(recent, broker_offsets, current_lag, now_ms, allowed_lag)
    return PartitionVerdict(status, complete)


def group_status(partition_statuses: Iterable[Status]) -> Status:
    """The worst partition's status; STOP, STALL and REWIND report as ERR at group level."""
    worst = Status.OK
    for status in partition_statuses:
        if STATUS_NUMBER[status] > STATUS_NUMBER[worst]:
            worst = status
    return Status.ERR if STATUS_NUMBER[worst] > STATUS_NUMBER[Status.ERR] else worst


def group_complete(completes: Sequence[float]) -> float:
    """Share of partitions whose window is complete (0 without partitions), as Burrow."""
    if not completes:
        return 0.0
    return sum(1 for c in completes if c >= 1.0) / len(completes)


def evaluate_group(
    partitions: Iterable[tuple[Sequence[Commit], int, Sequence[int]]],
    now_ms: int,
    *,
    window: int = DEFAULT_WINDOW,
    allowed_lag: int = 0,
    min_complete: float = 0.0,
) -> tuple[Status, list[PartitionVerdict]]:
    """Evaluate each ``(commits, current_lag, broker_offsets)`` and the group's status."""
    verdicts = [
        evaluate_partition(
            c,
            lag,
            now_ms,
            broker_offsets=ends,
            window=window,
            allowed_lag=allowed_lag,
            min_complete=min_complete,
        )
        for c, lag, ends in partitions
    ]
    return group_status(v.status for v in verdicts), verdicts
