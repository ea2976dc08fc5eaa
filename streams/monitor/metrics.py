"""Prometheus metrics from the latest snapshot (a custom collector: no stale label sets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.monitor.burrow import STATUS_NUMBER
from streams.monitor.model import Snapshot

__all__ = ["SnapshotCollector", "build_registry"]

_PART = ["group", "topic", "partition"]


class SnapshotCollector(Collector):
    """Exports ``tuyen_*`` gauges. Status numbers: OK 0, WARN 1, ERR 2, STOP 3, STALL 4,
    REWIND 5 (groups report 0, 1 or 2; partitions the specific error)."""

    def __init__(self, latest: Callable[[], Snapshot | None], errors: Callable[[], int]) -> None:
        self._latest = latest
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        snap = self._latest()
        err = GaugeMetricFamily(
            "tuyen_monitor_collect_errors", "Failed collections since the monitor started"
        )
        err.add_metric([], self._errors())
        yield err
        if snap is None:
            return
        taken = GaugeMetricFamily(
            "tuyen_monitor_last_collect_timestamp_seconds", "When the snapshot was taken"
        )
        taken.add_metric([], snap.taken_ms / 1000)
        yield taken

        lag = GaugeMetricFamily("tuyen_consumer_lag_messages", "Lag in messages", labels=_PART)
        secs = GaugeMetricFamily(
            "tuyen_consumer_lag_seconds",
            "Age of the first unconsumed message (0 when caught up)",
            labels=_PART,
        )
        committed = GaugeMetricFamily(
            "tuyen_consumer_committed_offset", "Committed offset", labels=_PART
        )
        end = GaugeMetricFamily("tuyen_partition_end_offset", "End offset", labels=_PART)
        pstat = GaugeMetricFamily(
            "tuyen_consumer_partition_status",
            "Burrow status: 0 OK, 1 WARN, 3 STOP, 4 STALL, 5 REWIND",
            labels=_PART,
        )
        gstat = GaugeMetricFamily(
            "tuyen_consumer_group_status",
            "Burrow group status: 0 OK, 1 WARN, 2 ERR",
            labels=["group"],
        )
        gsum = GaugeMetricFamily(
            "tuyen_consumer_group_lag_messages", "Total lag of the group", labels=["group"]
        )
        for g in snap.groups:
            gstat.add_metric([g.group], STATUS_NUMBER[g.status])
            gsum.add_metric([g.group], g.total_lag)
            for p in g.partitions:
                labels = [g.group, p.topic, str(p.partition)]
                lag.add_metric(labels, p.lag)
                secs.add_metric(labels, p.lag_seconds)
                committed.add_metric(labels, p.committed)
                end.add_metric(labels, p.end_offset)
                pstat.add_metric(labels, STATUS_NUMBER[p.status])
        yield from (lag, secs, committed, end, pstat, gstat, gsum)

        h = snap.health
        dlq = GaugeMetricFamily(
            "tuyen_dlq_records", "DLQ records by reason code", labels=["reason"]
        )
        for reason, count in sorted(h.dlq_reasons.items()):
            dlq.add_metric([reason], count)
        stage = GaugeMetricFamily(
            "tuyen_stage_events", "Events into/out of a stage", labels=["stage", "direction"]
        )
        for s in h.stages:
            stage.add_metric([s.stage, "in"], s.events_in)
            stage.add_metric([s.stage, "out"], s.events_out)
        fresh = GaugeMetricFamily(
            "tuyen_freshness_seconds",
            "Event time → tier delay percentiles",
            labels=["tier", "quantile"],
        )
        fcount = GaugeMetricFamily(
            "tuyen_freshness_samples", "Samples behind the percentiles", labels=["tier"]
        )
        for tier, pc in sorted(h.freshness.items()):
            for q, v in (("0.5", pc.p50), ("0.95", pc.p95), ("0.99", pc.p99)):
                fresh.add_metric([tier, q], v)
            fcount.add_metric([tier], pc.count)
        yield from (dlq, stage, fresh, fcount)


def build_registry(
    latest: Callable[[], Snapshot | None], errors: Callable[[], int] = lambda: 0
) -> CollectorRegistry:
    """A registry holding only the monitor's metrics."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(latest, errors))
    return registry
