"""End-to-end freshness as percentiles (pure: no Kafka here).

A sample is a pair (event time, written time): when the change happened at the station, and
when it reached a tier (a tier topic's message timestamp, a store file's write time, the
live aggregate's update). Streams and sinks may feed :func:`freshness_percentiles` their own
pairs; the monitor reads them from tier topics (message timestamp − ``ce_time`` header).
The event time and the histogram are declared in :mod:`schemas.freshness` (the sinks count
store freshness in the same buckets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from schemas.freshness import FRESHNESS_BUCKETS, Histogram, parse_ce_time

__all__ = [
    "FRESHNESS_BUCKETS",
    "Histogram",
    "Percentiles",
    "delay_percentiles",
    "freshness_percentiles",
    "from_epoch_ms",
    "parse_ce_time",
    "percentile",
]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Delay percentiles in seconds over ``count`` samples (all 0 when there are none)."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending list; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def freshness_percentiles(pairs: Iterable[tuple[datetime, datetime]]) -> Percentiles:
    """p50/p95/p99/max of ``written − event`` in seconds. Negative delays (clock skew) count 0."""
    return delay_percentiles((written - event).total_seconds() for event, written in pairs)


def delay_percentiles(delays: Iterable[float]) -> Percentiles:
    """p50/p95/p99/max of delays in seconds (negative ones count 0); all 0 without any."""
    s = sorted(max(0.0, d) for d in delays)
    if not s:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
    return Percentiles(len(s), percentile(s, 50), percentile(s, 95), percentile(s, 99), s[-1])


def from_epoch_ms(ms: int) -> datetime:
    """A Kafka timestamp (ms since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
