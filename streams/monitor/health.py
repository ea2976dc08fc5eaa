"""Pipeline health read from the topics themselves: flows per stage, DLQ reasons, freshness.

- events in/out per stage: sums of the end offsets of the stage's input and output topics
  (records ever written; for the compacted aggregates topic, updates ever written);
- DLQ records by reason code: the ``tuyen_reason`` header of the rejection records
  (``station.changes.rejections``: one per dead letter, without its payload; the monitor may
  not read the DLQ itself, which holds the rejected bytes), tallied incrementally (each
  collection reads only new records; the first reads at most the newest ``dlq_scan_limit``
  records per partition);
- freshness per tier: tier topic message timestamp − ``ce_time`` header of the records new
  since the last collection (at most ``freshness_sample`` per topic, the newest), into a
  cumulative histogram per tier (Prometheus) and percentiles over the last
  ``freshness_sample`` delays (the status page), for the topics the monitor may read: the
  national tier and ``aggregates`` (event → live aggregate; its records carry the newest
  event time they reflect). The record-level tiers are never read by the monitor: their
  freshness into the stores is each province sink's ``tuyen_sink_freshness_seconds``.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass

from schemas import topics as T
from schemas.freshness import CE_TIME_HEADER
from streams.monitor.config import MonitorConfig
from streams.monitor.freshness import Histogram, Percentiles, delay_percentiles, parse_ce_time
from streams.monitor.kafka_io import TP, KafkaClients
from streams.monitor.model import PipelineHealth, StageFlow

__all__ = ["REASON_HEADER", "HealthCollector", "Stage", "pipeline_stages", "tier_topics"]

logger = logging.getLogger(__name__)

REASON_HEADER = "tuyen_reason"


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage of the pipeline and the topics it reads and writes (full names)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def pipeline_stages(prefix: str = "", province_topics: tuple[str, ...] = ()) -> tuple[Stage, ...]:
    """The stages of DESIGN.md's data flow, with prefixed topic names (``province_topics``:
    the per-province record-level topics the cluster has)."""

    def n(base: str) -> str:
        return T.topic_name(base, prefix)

    # every accepted event has exactly one national copy: tier.national is the validate
    # stage's output (changes.valid is not published unless the worker is told to)
    accepted = n(T.TIER_NATIONAL)
    record_level = (n(T.TIER_DISTRICT), n(T.TIER_PROVINCE), *province_topics)
    return (
        Stage("validate", (n(T.RAW),), (accepted, n(T.DLQ))),
        Stage("route", (accepted,), record_level),
        Stage("aggregate", (accepted,), (n(T.AGGREGATES),)),
    )


def tier_topics(prefix: str = "") -> dict[str, str]:
    """Freshness tiers → topic: the ones the monitor may read (the pseudonymised national
    feed and the live aggregates; never a record-level topic)."""
    return {
        "national": T.topic_name(T.TIER_NATIONAL, prefix),
        "aggregates": T.topic_name(T.AGGREGATES, prefix),
    }


HeaderValue = str | bytes | None


def _header(
    headers: dict[str, HeaderValue] | list[tuple[str, HeaderValue]] | None, name: str
) -> bytes | None:
    items = headers.items() if isinstance(headers, dict) else headers or ()
    for key, value in items:
        if key == name:
            return value.encode() if isinstance(value, str) else value
    return None


class HealthCollector:
    """Collects :class:`PipelineHealth`; keeps the DLQ tally between collections."""

    def __init__(self, config: MonitorConfig, clients: KafkaClients) -> None:
        self.config = config
        self.clients = clients
        self.dlq_topic = T.topic_name(T.REJECTIONS, config.topic_prefix)
        self._dlq_positions: dict[TP, int] = {}
        self._dlq_counts: Counter[str] = Counter()
        self._fresh_positions: dict[TP, int] = {}
        self._fresh_hist: dict[str, Histogram] = {}
        self._fresh_recent: dict[str, deque[float]] = {}

    def _update_dlq(self, ends: dict[TP, int], starts: dict[TP, int]) -> None:
        dlq = {tp: end for tp, end in ends.items() if tp[0] == self.dlq_topic}
        for tp, end in dlq.items():
            if tp not in self._dlq_positions:
                self._dlq_positions[tp] = max(starts.get(tp, 0), end - self.config.dlq_scan_limit)
            elif self._dlq_positions[tp] < starts.get(tp, 0):  # retention removed records
                self._dlq_positions[tp] = starts[tp]
        for msg in self.clients.read(dict(self._dlq_positions), dlq, self.config.request_timeout_s):
            tp = (msg.topic() or "", msg.partition() or 0)
            self._dlq_positions[tp] = (msg.offset() or 0) + 1
            raw = _header(msg.headers(), REASON_HEADER)
            reason = raw.decode("utf-8", "replace") if raw else "unknown"
            self._dlq_counts[reason] += 1

    def _freshness(self, ends: dict[TP, int], starts: dict[TP, int]) -> None:
        """Read the tier records new since the last collection (bounded, newest first) and
        add their delays to each tier's histogram and recent window."""
        limit = self.config.freshness_sample
        for tier, topic in tier_topics(self.config.topic_prefix).items():
            parts = [tp for tp in ends if tp[0] == topic]
            if not parts or limit == 0:
                continue
            per = max(1, limit // len(parts))
            begin = {
                tp: max(starts.get(tp, 0), self._fresh_positions.get(tp, 0), ends[tp] - per)
                for tp in parts
            }
            delays: list[float] = []
            for msg in self.clients.read(
                begin, {tp: ends[tp] for tp in parts}, self.config.peek_timeout_s
            ):
                tp = (msg.topic() or "", msg.partition() or 0)
                self._fresh_positions[tp] = (msg.offset() or 0) + 1
                event = parse_ce_time(_header(msg.headers(), CE_TIME_HEADER))
                _kind, ts = msg.timestamp()
                if event is not None and ts > 0:
                    delays.append(max(0.0, ts / 1000 - event.timestamp()))
            if delays:
                self._fresh_hist[tier] = self._fresh_hist.get(tier, Histogram()).observe(delays)
                recent = self._fresh_recent.setdefault(tier, deque(maxlen=limit))
                recent.extend(delays)

    def _percentiles(self) -> dict[str, Percentiles]:
        tiers = tier_topics(self.config.topic_prefix)
        return {t: delay_percentiles(self._fresh_recent.get(t, ())) for t in tiers}

    def collect(self) -> PipelineHealth:
        per_province = T.province_topic_prefix(self.config.topic_prefix)
        provinces = tuple(
            sorted(t for t in self.clients.metadata().topics if t.startswith(per_province))
        )
        stages = pipeline_stages(self.config.topic_prefix, provinces)
        names = {t for s in stages for t in (*s.inputs, *s.outputs)}
        names.add(self.dlq_topic)
        names.update(tier_topics(self.config.topic_prefix).values())
        tps = self.clients.partitions(names)
        ends = self.clients.end_offsets(tps)
        starts = self.clients.start_offsets(tps)
        totals: Counter[str] = Counter()
        for (topic, _p), end in ends.items():
            totals[topic] += end
        flows = tuple(
            StageFlow(
                s.name,
                s.inputs,
                s.outputs,
                sum(totals[t] for t in s.inputs),
                sum(totals[t] for t in s.outputs),
            )
            for s in stages
        )
        self._update_dlq(ends, starts)
        self._freshness(ends, starts)
        return PipelineHealth(
            stages=flows,
            topic_events={t: totals.get(t, 0) for t in sorted(names)},
            dlq_reasons=dict(self._dlq_counts),
            freshness=self._percentiles(),
            freshness_histograms=dict(self._fresh_hist),
        )
