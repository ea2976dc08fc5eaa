"""What freshness means, declared once for every package that measures it: the event time of
a record (the CloudEvents ``ce_time`` header, RFC 3339) and the cumulative histogram its
delays are counted in (one bucket set), so the monitor's tier freshness and the sinks' store
freshness are the same kind of number. Pure: no Kafka, no Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["CE_TIME_HEADER", "FRESHNESS_BUCKETS", "Histogram", "parse_ce_time"]

#: The header that carries a record's event time (the station's change time).
CE_TIME_HEADER = "ce_time"


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
