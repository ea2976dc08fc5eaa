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

__all__ = ["Percentiles", "freshness_percentiles", "from_epoch_ms", "parse_ce_time", "percentile"]


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
    delays = sorted(max(0.0, (written - event).total_seconds()) for event, written in pairs)
    if not delays:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
    return Percentiles(
        count=len(delays),
        p50=percentile(delays, 50),
        p95=percentile(delays, 95),
        p99=percentile(delays, 99),
        max=delays[-1],
    )


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
