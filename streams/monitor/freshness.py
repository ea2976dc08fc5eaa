"""End-to-end freshness as percentiles (pure: no Kafka here).

A sample is a pair (event time, written time): when the change happened at the station, and
when it reached a tier (a tier topic's message timestamp, a store file's write time, the
live aggregate's update). Streams and sinks may feed :func:`freshness_percentiles` their own
pairs; the monitor reads them from tier topics (message timestamp − ``ce_time`` header).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

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


def parse_ce_time(raw: bytes | str | None) -> datetime | None:
    """A CloudEvents ``time`` (RFC 3339) as an aware datetime; None when absent or invalid."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def from_epoch_ms(ms: int) -> datetime:
    """A Kafka timestamp (ms since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


#: Freshness histogram bucket bounds (seconds): sub-second streaming up to a station that was
#: offline for a week.
FRESHNESS_BUCKETS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
    604800.0,
)


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram of delays (Prometheus semantics): ``counts[i]`` observations
    ≤ ``bounds[i]``, plus +Inf = ``count``; immutable, :meth:`observe` returns a new one."""

    bounds: tuple[float, ...] = FRESHNESS_BUCKETS
    counts: tuple[int, ...] = (0,) * len(FRESHNESS_BUCKETS)
    count: int = 0
    sum: float = 0.0

    def observe(self, delays: Iterable[float]) -> Histogram:
        counts = list(self.counts)
        count, total = self.count, self.sum
        for d in delays:
            d = max(0.0, d)
            count += 1
            total += d
            for i, bound in enumerate(self.bounds):
                if d <= bound:
                    counts[i] += 1
        return Histogram(self.bounds, tuple(counts), count, total)

    def buckets(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as Prometheus exposes them."""
        return [(_le(b), c) for b, c in zip(self.bounds, self.counts, strict=True)] + [
            ("+Inf", self.count)
        ]


def _le(bound: float) -> str:
    return repr(float(bound))
