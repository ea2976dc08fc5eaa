"""The sinks' own Prometheus metrics (``tuyen sink --metrics-port``), labelled by ``tier``
(the sink's name: district, province, national, aggregates, dlq).

- ``tuyen_sink_rows_written_total``: rows made visible in the store (committed after their
  files were durable);
- ``tuyen_sink_files_written_total`` / ``tuyen_sink_bytes_written_total``: Parquet files
  written (a flush rewrites the open segment's files under the same names) and their bytes;
- ``tuyen_sink_commits_total``, ``tuyen_sink_last_commit_timestamp_seconds``;
- ``tuyen_sink_errors_total``: commits that failed and were retried, consume errors;
- ``tuyen_sink_freshness_seconds`` (histogram): event time (``ce_time``) → the commit that
  made the row visible in the store (event → visible in the store).

:class:`SinkHops` cuts the sink's own time into hops (topic → consumed → flush started →
files written → committed) per consumed batch; the sink logs their percentiles when it stops
(``sink hops …``, read by ``benchmarks/bench_e2e.py``).

:class:`FreshnessTracker` is pure (no Kafka, no Prometheus): the runner feeds it the event
time of every message it writes and tells it what each commit covered.
"""

from __future__ import annotations

import bisect
import logging
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import start_http_server
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from schemas.freshness import Histogram, parse_ce_time

__all__ = [
    "SINK_HOPS",
    "SINK_METRIC_NAMES",
    "FreshnessTracker",
    "SinkCounters",
    "SinkHops",
    "serve_metrics",
]

logger = logging.getLogger(__name__)

SINK_METRIC_NAMES = (
    "tuyen_sink_rows_written_total",
    "tuyen_sink_files_written_total",
    "tuyen_sink_bytes_written_total",
    "tuyen_sink_commits_total",
    "tuyen_sink_errors_total",
    "tuyen_sink_last_commit_timestamp_seconds",
    "tuyen_sink_freshness_seconds_bucket",
    "tuyen_sink_freshness_seconds_sum",
    "tuyen_sink_freshness_seconds_count",
)


@dataclass
class FreshnessTracker:
    """Event times of written-but-uncommitted rows per partition, and the cumulative
    histogram of ``commit time − event time`` of the rows commits made visible."""

    histogram: Histogram = field(default_factory=Histogram)
    rows: int = 0  # rows made visible
    _pending: dict[int, tuple[list[int], list[float | None]]] = field(default_factory=dict)

    def written(
        self, partition: int, offsets: Sequence[int], events: Sequence[float | None]
    ) -> None:
        """Rows at ``offsets`` (ascending) of ``partition`` with their event times (epoch s;
        None: unknown) are in files that are not committed yet."""
        offs, evs = self._pending.setdefault(partition, ([], []))
        offs.extend(offsets)
        evs.extend(events)

    def forget(self, partition: int) -> None:
        """The partition was revoked or re-assigned: its uncommitted rows are rewritten."""
        self._pending.pop(partition, None)

    def committed(self, partition: int, offset: int, at: float) -> None:
        """A commit of ``offset`` (the next to read) at time ``at`` made the rows before it
        visible: observe their delays."""
        pending = self._pending.get(partition)
        if not pending:
            return
        offs, evs = pending
        cut = bisect.bisect_left(offs, offset)
        self.rows += cut
        delays = [at - e for e in evs[:cut] if e is not None]
        if delays:
            self.histogram = self.histogram.observe(delays)
        del offs[:cut]
        del evs[:cut]


#: A sink's hops, in order: the tier-topic timestamp of a batch's oldest message → the
#: ``consume()`` that returned it → the start of the step that flushed it → its files written
#: (durable) → its offsets committed (visible to a reader that trusts commits; the files are
#: readable from "written" on).
SINK_HOPS = ("consumed", "flush_wait", "write", "commit")


@dataclass
class SinkHops:
    """Per consumed batch (one partition's messages of one ``consume()``), the seconds of
    each of :data:`SINK_HOPS`; pure, bounded (the last ``keep`` batches), a few operations
    per batch and per commit."""

    keep: int = 20_000
    flush_started: float = 0.0  # set by the runner at the start of each step's writes
    samples: dict[str, deque[float]] = field(default_factory=dict)
    #: partition → [first offset, topic time, consumed at, flush started, written at]
    _open: dict[int, list[list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = {h: deque(maxlen=self.keep) for h in SINK_HOPS}

    def consumed(self, partition: int, first: int, topic_time: float, at: float) -> None:
        self._open.setdefault(partition, []).append([first, topic_time, at, 0.0, 0.0])

    def written(self, partition: int, offset: int, at: float) -> None:
        """The files of the rows before ``offset`` are durable (their commit follows)."""
        for batch in self._open.get(partition, ()):
            if batch[0] >= offset:
                break
            if not batch[4]:
                batch[3], batch[4] = self.flush_started, at

    def committed(self, partition: int, offset: int, at: float) -> None:
        batches = self._open.get(partition)
        while batches and batches[0][0] < offset and batches[0][4]:
            _first, topic, consumed, flushed, written = batches.pop(0)
            for hop, dt in zip(
                SINK_HOPS,
                (consumed - topic, flushed - consumed, written - flushed, at - written),
                strict=True,
            ):
                self.samples[hop].append(dt)

    def forget(self, partition: int) -> None:
        self._open.pop(partition, None)

    def summary(self) -> str:
        """``batches=N consumed_p50=… consumed_p95=… …`` (seconds), for the stop log line."""
        fields = [f"batches={len(self.samples[SINK_HOPS[0]])}"]
        for hop in SINK_HOPS:
            data = list(self.samples[hop])
            if len(data) >= 2:
                q = statistics.quantiles(data, n=100, method="inclusive")
                p50, p95 = q[49], q[94]
            else:
                p50 = p95 = data[0] if data else 0.0
            fields += [f"{hop}_p50={p50:.3f}", f"{hop}_p95={p95:.3f}"]
        return " ".join(fields)


def event_seconds(raw: str | bytes | None) -> float | None:
    """A ``ce_time`` header as epoch seconds (None when absent or not RFC 3339)."""
    when = parse_ce_time(raw)
    return when.timestamp() if when is not None else None


class SinkCounters(Protocol):
    """What a running sink exposes to its metrics (implemented by ``SinkRunner``)."""

    @property
    def name(self) -> str: ...
    @property
    def files_written(self) -> int: ...
    @property
    def bytes_written(self) -> int: ...
    @property
    def commits(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def last_commit_time(self) -> float | None: ...
    @property
    def freshness(self) -> FreshnessTracker: ...


class _SinksCollector(Collector):
    def __init__(self, sinks: Callable[[], Iterable[SinkCounters]]) -> None:
        self._sinks = sinks

    def collect(self) -> Iterator[Metric]:
        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=["tier"])

        rows = counter("tuyen_sink_rows_written", "Rows made visible in the store")
        files = counter("tuyen_sink_files_written", "Parquet files written (rewrites included)")
        size = counter("tuyen_sink_bytes_written", "Bytes of the Parquet files written")
        commits = counter("tuyen_sink_commits", "Offset commits after durable files")
        errors = counter("tuyen_sink_errors", "Failed (retried) commits and consume errors")
        last = GaugeMetricFamily(
            "tuyen_sink_last_commit_timestamp_seconds", "Last successful commit", labels=["tier"]
        )
        fresh = HistogramMetricFamily(
            "tuyen_sink_freshness_seconds",
            "Event time to visible in the store (the commit after the file was durable)",
            labels=["tier"],
        )
        for s in self._sinks():
            t = [s.name]
            rows.add_metric(t, s.freshness.rows)
            files.add_metric(t, s.files_written)
            size.add_metric(t, s.bytes_written)
            commits.add_metric(t, s.commits)
            errors.add_metric(t, s.errors)
            if s.last_commit_time is not None:
                last.add_metric(t, s.last_commit_time)
            hist = s.freshness.histogram
            if hist.count:
                fresh.add_metric(t, hist.buckets(), sum_value=hist.sum)
        yield from (rows, files, size, commits, errors, last, fresh)


def build_registry(sinks: Callable[[], Iterable[SinkCounters]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_SinksCollector(sinks))
    return registry


def serve_metrics(
    sinks: Callable[[], Iterable[SinkCounters]], port: int, host: str = "127.0.0.1"
) -> int:
    """Serve ``/metrics`` for the sinks in a daemon thread; returns the bound port."""
    server, _thread = start_http_server(port, addr=host, registry=build_registry(sinks))
    bound = int(server.server_address[1])
    logger.info("sink metrics serving host=%s port=%d", host, bound)
    return bound
