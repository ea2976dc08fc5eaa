"""Prometheus metrics from the latest snapshot (a custom collector: no stale label sets).

Conventions operators already know: cumulative values are counters (``_total``), freshness is
a histogram (no series for a tier without samples), lag in seconds is absent when it could
not be measured, and status numbers are Burrow's (NOTFOUND 0, OK 1, WARN 2, ERR 3, STOP 4,
STALL 5, REWIND 6), with partition status exported only for complete windows, as Burrow's
exporter does. ``promtool check metrics`` reports nothing on this output (a test runs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streams.monitor.burrow import STATUS_NUMBER
from streams.monitor.model import ClusterHealth, PipelineHealth, Snapshot

__all__ = ["SnapshotCollector", "build_registry"]

_PART = ["group", "topic", "partition"]


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class SnapshotCollector(Collector):
    """Exports ``tuyen_*`` metrics of the latest snapshot."""

    def __init__(self, latest: Callable[[], Snapshot | None], errors: Callable[[], int]) -> None:
        self._latest = latest
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        snap = self._latest()
        err = CounterMetricFamily(
            "tuyen_monitor_collect_errors", "Failed collections since the monitor started"
        )
        err.add_metric([], self._errors())
        yield err
        if snap is None:
            return
        taken = _gauge(
            "tuyen_monitor_last_collect_timestamp_seconds", "When the latest snapshot was taken"
        )
        taken.add_metric([], snap.taken_ms / 1000)
        yield taken
        yield from _groups(snap)
        yield from _pipeline(snap.health)
        if snap.cluster is not None:
            yield from _cluster(snap.cluster)


def _groups(snap: Snapshot) -> Iterator[Metric]:
    lag = _gauge("tuyen_consumer_lag_messages", "Lag in messages (end - committed)", _PART)
    secs = _gauge(
        "tuyen_consumer_lag_seconds",
        "Age of the first unconsumed message (0 when caught up; absent when unknown)",
        _PART,
    )
    committed = _gauge("tuyen_consumer_committed_offset", "Committed offset", _PART)
    end = _gauge("tuyen_partition_end_offset", "End offset (high watermark)", _PART)
    pstat = _gauge(
        "tuyen_consumer_partition_status",
        "Burrow partition status: 1 OK, 2 WARN, 4 STOP, 5 STALL, 6 REWIND (complete windows)",
        _PART,
    )
    gstat = _gauge(
        "tuyen_consumer_group_status",
        "Burrow group status: 0 NOTFOUND, 1 OK, 2 WARN, 3 ERR",
        ["group"],
    )
    gsum = _gauge("tuyen_consumer_group_lag_messages", "Total lag of the group", ["group"])
    gcomplete = _gauge(
        "tuyen_consumer_group_complete", "Share of partitions with a full window", ["group"]
    )
    gparts = _gauge("tuyen_consumer_group_partitions", "Partitions with a commit", ["group"])
    gmembers = _gauge("tuyen_consumer_group_members", "Members of the group", ["group"])
    gstate = _gauge(
        "tuyen_consumer_group_state", "1 for the group's current state", ["group", "state"]
    )
    for g in snap.groups:
        gstat.add_metric([g.group], STATUS_NUMBER[g.status])
        gsum.add_metric([g.group], g.total_lag)
        gcomplete.add_metric([g.group], g.complete)
        gparts.add_metric([g.group], g.partition_count)
        gstate.add_metric([g.group, g.state], 1)
        if g.members is not None:
            gmembers.add_metric([g.group], g.members)
        for p in g.partitions:
            labels = [g.group, p.topic, str(p.partition)]
            lag.add_metric(labels, p.lag)
            if p.lag_seconds is not None:
                secs.add_metric(labels, p.lag_seconds)
            committed.add_metric(labels, p.committed)
            end.add_metric(labels, p.end_offset)
            if p.complete >= 1.0:
                pstat.add_metric(labels, STATUS_NUMBER[p.status])
    yield from (lag, secs, committed, end, pstat, gstat, gsum, gcomplete, gparts, gmembers, gstate)


def _pipeline(h: PipelineHealth) -> Iterator[Metric]:
    dlq = CounterMetricFamily(
        "tuyen_dlq_records", "DLQ records seen by the monitor, by reason code", labels=["reason"]
    )
    for reason, count in sorted(h.dlq_reasons.items()):
        dlq.add_metric([reason], count)
    stage = CounterMetricFamily(
        "tuyen_stage_events",
        "Events into/out of a stage (sums of topic end offsets)",
        labels=["stage", "direction"],
    )
    for s in h.stages:
        stage.add_metric([s.stage, "in"], s.events_in)
        stage.add_metric([s.stage, "out"], s.events_out)
    topic = CounterMetricFamily(
        "tuyen_topic_records", "Records ever written to a pipeline topic", labels=["topic"]
    )
    for name, count in sorted(h.topic_events.items()):
        topic.add_metric([name], count)
    fresh = HistogramMetricFamily(
        "tuyen_freshness_seconds",
        "Event time to tier topic (aggregates: to live aggregate), sampled records",
        labels=["tier"],
    )
    for tier, hist in sorted(h.freshness_histograms.items()):
        fresh.add_metric([tier], hist.buckets(), sum_value=hist.sum)
    yield from (dlq, stage, topic, fresh)


def _cluster(c: ClusterHealth) -> Iterator[Metric]:
    urp = _gauge(
        "tuyen_cluster_under_replicated_partitions", "Partitions whose ISR is short (metadata)"
    )
    urp.add_metric([], c.under_replicated)
    offline = _gauge("tuyen_cluster_offline_partitions", "Partitions without a leader")
    offline.add_metric([], c.offline)
    parts = _gauge("tuyen_cluster_partitions", "Partitions in the cluster")
    parts.add_metric([], c.partitions)
    up = _gauge("tuyen_broker_up", "1 when the broker is in the cluster metadata", ["node"])
    leaders = _gauge("tuyen_broker_leader_partitions", "Partitions the broker leads", ["node"])
    for b in c.brokers:
        up.add_metric([str(b.node_id)], 1 if b.alive else 0)
        leaders.add_metric([str(b.node_id)], b.leaders)
    yield from (urp, offline, parts, up, leaders)


def build_registry(
    latest: Callable[[], Snapshot | None], errors: Callable[[], int] = lambda: 0
) -> CollectorRegistry:
    """A registry holding only the monitor's metrics."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(latest, errors))
    return registry
