"""Burrow's consumer-status rules, as a pure function of a commit window (no Kafka here).

This module imports neither faust nor confluent_kafka: the collector feeds it a window of
commits and the current lag, and a clock value; tests feed it explicit timestamps.

Commit history. Each :class:`Commit` is one offset commit of one group on one partition,
with the broker's commit timestamp and the partition's lag *at that moment* (end offset then
minus the committed offset). The collector reads every commit from ``__consumer_offsets``
(as Burrow does), not from periodic samples of the committed offset: a sampled committed
offset cannot tell a consumer that keeps committing the same offset (STALL) from one that
stopped committing (STOP); only the commit timestamps can.

The rules (issue 6, after LinkedIn Burrow's evaluator, ``core/internal/evaluator``), applied
by :func:`evaluate_partition` in this order, first match wins:

1. **OK** when the current lag is ≤ the allowed lag (0 by default): nothing to wait for.
2. **STOP** when the time since the last commit exceeds the window's span (last commit time −
   first commit time), unless the consumer was recently caught up (the lag at some commit in
   the window was ≤ the allowed lag).
3. **REWIND** when a committed offset went backwards anywhere in the window.
4. **OK** when the lag was zero (≤ allowed) at some commit of the window.
5. **STALL** when every offset in the window is the same (the consumer commits but does not
   move) — we know from rule 1 there is lag.
6. **WARN** when the lag never decreased from one commit to the next across the window
   (the consumer moves but falls behind).
7. otherwise **OK**.

Burrow 1.x's code runs the zero-lag check (4) before REWIND and STOP; the issue's order,
followed here, reports a rewind or a stop even when the window once had zero lag except
that a recently caught-up consumer is never STOP (an idle, caught-up consumer that stops
committing is fine). A window needs at least one commit; an empty window is OK with
``complete`` 0 (Burrow: no offsets → OK). A partial window (fewer than N commits) is
evaluated on what there is, and reported with ``complete`` < 1, as Burrow does.

Group level: the group takes its worst partition; STOP, STALL and REWIND report as ERR.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

__all__ = [
    "DEFAULT_WINDOW",
    "STATUS_NUMBER",
    "Commit",
    "PartitionVerdict",
    "Status",
    "evaluate_group",
    "evaluate_partition",
    "group_status",
]

DEFAULT_WINDOW = 10


class Status(StrEnum):
    """Partition and group statuses (Burrow's names)."""

    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"


# As a number for Prometheus: 0 is fine, 1 needs a look, ≥ 2 is an error; partitions report
# the kind of error (3 STOP, 4 STALL, 5 REWIND), groups report 2 (ERR) for any of them.
STATUS_NUMBER: dict[Status, int] = {
    Status.OK: 0,
    Status.WARN: 1,
    Status.ERR: 2,
    Status.STOP: 3,
    Status.STALL: 4,
    Status.REWIND: 5,
}

# Severity for "the group takes its worst partition" (Burrow's constant order).
_SEVERITY = STATUS_NUMBER


@dataclass(frozen=True, slots=True)
class Commit:
    """One offset commit: the offset, when the broker stored it (ms), the lag at that time."""

    offset: int
    timestamp_ms: int
    lag: int


@dataclass(frozen=True, slots=True)
class PartitionVerdict:
    """The status of one partition and how complete its window was (0..1)."""

    status: Status
    complete: float


def _rewound(window: Sequence[Commit]) -> bool:
    return any(b.offset < a.offset for a, b in pairwise(window))


def _stalled(window: Sequence[Commit]) -> bool:
    return all(c.offset == window[0].offset for c in window)


def _lag_not_decreasing(window: Sequence[Commit]) -> bool:
    return all(b.lag >= a.lag for a, b in pairwise(window))


def _stopped(window: Sequence[Commit], now_ms: int) -> bool:
    first, last = window[0].timestamp_ms, window[-1].timestamp_ms
    return (now_ms - last) > (last - first)


def evaluate_partition(
    commits: Sequence[Commit],
    current_lag: int,
    now_ms: int,
    *,
    window: int = DEFAULT_WINDOW,
    allowed_lag: int = 0,
) -> PartitionVerdict:
    """Apply the rules above to the last ``window`` commits (oldest first) of one partition."""
    if window < 1:
        raise ValueError("window must be at least 1")
    recent = list(commits[-window:])
    complete = len(recent) / window
    if not recent or current_lag <= allowed_lag:  # rule 1 (and Burrow's empty window)
        return PartitionVerdict(Status.OK, complete)
    caught_up = any(c.lag <= allowed_lag for c in recent)
    if not caught_up and _stopped(recent, now_ms):  # rule 2
        return PartitionVerdict(Status.STOP, complete)
    if _rewound(recent):  # rule 3
        return PartitionVerdict(Status.REWIND, complete)
    if caught_up:  # rule 4
        return PartitionVerdict(Status.OK, complete)
    if _stalled(recent):  # rule 5
        return PartitionVerdict(Status.STALL, complete)
    if _lag_not_decreasing(recent):  # rule 6
        return PartitionVerdict(Status.WARN, complete)
    return PartitionVerdict(Status.OK, complete)  # rule 7


def group_status(partition_statuses: Iterable[Status]) -> Status:
    """The worst partition's status; STOP, STALL and REWIND report as ERR at group level."""
    worst = Status.OK
    for status in partition_statuses:
        if _SEVERITY[status] > _SEVERITY[worst]:
            worst = status
    return Status.ERR if _SEVERITY[worst] >= _SEVERITY[Status.ERR] else worst


def evaluate_group(
    partitions: Iterable[tuple[Sequence[Commit], int]],
    now_ms: int,
    *,
    window: int = DEFAULT_WINDOW,
    allowed_lag: int = 0,
) -> tuple[Status, list[PartitionVerdict]]:
    """Evaluate each ``(commits, current_lag)`` and the group's status from them."""
    verdicts = [
        evaluate_partition(c, lag, now_ms, window=window, allowed_lag=allowed_lag)
        for c, lag in partitions
    ]
    return group_status(v.status for v in verdicts), verdicts
