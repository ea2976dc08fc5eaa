"""What one collection sees: lag per group/partition with its status, pipeline and broker health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.monitor.burrow import STATUS_NUMBER, Commit, Status
from streams.monitor.freshness import Histogram, Percentiles

__all__ = [
    "BrokerHealth",
    "ClusterHealth",
    "GroupLag",
    "PartitionLag",
    "PipelineHealth",
    "Snapshot",
    "StageFlow",
    "check_exit_code",
]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of one group: offsets, lag in messages and seconds, Burrow status."""

    topic: str
    partition: int
    committed: int
    end_offset: int
    lag: int
    lag_seconds: float | None  # None: there is lag but its age could not be read
    status: Status
    complete: float  # how full the commit window is (0..1)
    commits: int  # commits in the window
    last_commit_ms: int | None
    start: Commit | None = None  # oldest commit of the window
    end: Commit | None = None  # newest commit of the window
    owner: str = ""  # host of the member that owns the partition now
    client_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end_offset": self.end_offset,
            "lag": self.lag,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "status": self.status.value,
            "status_code": STATUS_NUMBER[self.status],
            "complete": self.complete,
            "commits": self.commits,
            "last_commit_ms": self.last_commit_ms,
            "owner": self.owner,
            "client_id": self.client_id,
        }


@dataclass(frozen=True, slots=True)
class GroupLag:
    """A consumer group: its worst partition's status (STOP/STALL/REWIND → ERR)."""

    group: str
    state: str
    status: Status
    partitions: tuple[PartitionLag, ...]
    members: int | None = None  # None: the group could not be described
    complete: float = 0.0  # share of partitions whose commit window is full (Burrow)

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def maxlag(self) -> PartitionLag | None:
        """The partition with the largest current lag (the first of equals, as Burrow)."""
        best: PartitionLag | None = None
        for p in self.partitions:
            if best is None or p.lag > best.lag:
                best = p
        return best

    @property
    def max_lag_seconds(self) -> float | None:
        """The oldest unconsumed message's age; None when some lagging age is unknown."""
        ages = [p.lag_seconds for p in self.partitions]
        if any(a is None for a in ages):
            return None
        return max((a for a in ages if a is not None), default=0.0)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({p.topic for p in self.partitions}))

    def as_dict(self) -> dict[str, Any]:
        worst = self.max_lag_seconds
        maxlag = self.maxlag
        return {
            "group": self.group,
            "state": self.state,
            "members": self.members,
            "status": self.status.value,
            "status_code": STATUS_NUMBER[self.status],
            "complete": self.complete,
            "partition_count": self.partition_count,
            "total_lag": self.total_lag,
            "maxlag": maxlag.as_dict() if maxlag is not None else None,
            "max_lag_seconds": None if worst is None else round(worst, 3),
            "topics": list(self.topics),
            "partitions": [p.as_dict() for p in self.partitions],
        }

    def burrow_status(self, cluster: str, *, show_all: bool = True) -> dict[str, Any]:
        """Burrow's ``ConsumerGroupStatus`` JSON (``/v3/kafka/<cluster>/consumer/<g>/lag``)."""

        def part(p: PartitionLag) -> dict[str, Any]:
            return {
                "topic": p.topic,
                "partition": p.partition,
                "owner": p.owner,
                "client_id": p.client_id,
                "status": p.status.value,
                "start": _burrow_offset(p.start),
                "end": _burrow_offset(p.end),
                "current_lag": p.lag,
                "complete": p.complete,
            }

        shown = [p for p in self.partitions if show_all or p.status is not Status.OK]
        maxlag = self.maxlag
        return {
            "cluster": cluster,
            "group": self.group,
            "status": self.status.value,
            "complete": self.complete,
            "partitions": [part(p) for p in shown],
            "partition_count": self.partition_count,
            "maxlag": part(maxlag) if maxlag is not None else None,
            "totallag": self.total_lag,
        }


def _burrow_offset(c: Commit | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "offset": c.offset,
        "timestamp": c.timestamp_ms,
        "observedAt": c.timestamp_ms,
        "lag": c.lag,
    }


@dataclass(frozen=True, slots=True)
class StageFlow:
    """Events into and out of one pipeline stage (sums of topic end offsets)."""

    stage: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    events_in: int
    events_out: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "events_in": self.events_in,
            "events_out": self.events_out,
        }


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """Flows per stage, DLQ records by reason code, freshness per tier (latest sample)."""

    stages: tuple[StageFlow, ...] = ()
    topic_events: dict[str, int] = field(default_factory=dict)
    dlq_reasons: dict[str, int] = field(default_factory=dict)
    freshness: dict[str, Percentiles] = field(default_factory=dict)
    #: cumulative delays per tier since the monitor started (only tiers with samples)
    freshness_histograms: dict[str, Histogram] = field(default_factory=dict)

    def top_dlq_reasons(self, n: int = 10) -> list[tuple[str, int]]:
        return sorted(self.dlq_reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages": [s.as_dict() for s in self.stages],
            "topic_events": dict(self.topic_events),
            "dlq_reasons": dict(self.dlq_reasons),
            "freshness": {k: v.as_dict() for k, v in self.freshness.items()},
        }


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """One broker as the cluster metadata and (when scraped) its own JMX exporter see it."""

    node_id: int
    address: str  # host:port, "" when the broker is not in the metadata (down)
    alive: bool
    leaders: int = 0  # partitions it leads
    replicas: int = 0  # partition replicas it is assigned
    jmx: dict[str, float] = field(default_factory=dict)  # metric → value from its exporter
    exporter_up: bool | None = None  # None: no exporter URL known for this broker

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "alive": self.alive,
            "leaders": self.leaders,
            "replicas": self.replicas,
            "jmx": dict(self.jmx),
            "exporter_up": self.exporter_up,
        }


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """Replication health from the metadata: under-replicated and offline partitions."""

    brokers: tuple[BrokerHealth, ...] = ()
    partitions: int = 0
    under_replicated: int = 0  # ISR smaller than the replica set
    offline: int = 0  # no leader
    active_controller: int | None = None  # from the brokers' JMX exporters, when scraped
    under_replicated_partitions: tuple[str, ...] = ()  # "topic[p]" (first 50)

    def as_dict(self) -> dict[str, Any]:
        return {
            "brokers": [b.as_dict() for b in self.brokers],
            "partitions": self.partitions,
            "under_replicated": self.under_replicated,
            "offline": self.offline,
            "active_controller": self.active_controller,
            "under_replicated_partitions": list(self.under_replicated_partitions),
        }


def check_exit_code(groups: tuple[GroupLag, ...]) -> int:
    """`tuyen lag --check`: 1 when a group is WARN or ERR (a known problem wins), else 2 when
    a group is NOTFOUND (its state is unknown), else 0."""
    if any(g.status in (Status.WARN, Status.ERR) for g in groups):
        return 1
    if any(g.status is Status.NOTFOUND for g in groups):
        return 2
    return 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One collection: every watched group and the pipeline's health, at ``taken_ms``.

    ``history``: per group, (ms, total lag) of the recent collections (the service keeps the
    last hour; a one-shot `tuyen lag` has none)."""

    taken_ms: int
    groups: tuple[GroupLag, ...]
    health: PipelineHealth = field(default_factory=PipelineHealth)
    cluster: ClusterHealth | None = None
    history: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @property
    def all_ok(self) -> bool:
        return all(g.status is Status.OK for g in self.groups)

    @property
    def exit_code(self) -> int:
        return check_exit_code(self.groups)

    def group(self, name: str) -> GroupLag:
        for g in self.groups:
            if g.group == name:
                return g
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "taken_ms": self.taken_ms,
            "all_ok": self.all_ok,
            "groups": [g.as_dict() for g in self.groups],
            "health": self.health.as_dict(),
            "cluster": self.cluster.as_dict() if self.cluster is not None else None,
        }
