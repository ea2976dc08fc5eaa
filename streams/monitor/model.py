"""What one collection sees: lag per group/partition with its status, and pipeline health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.monitor.burrow import STATUS_NUMBER, Status
from streams.monitor.freshness import Percentiles

__all__ = ["GroupLag", "PartitionLag", "PipelineHealth", "Snapshot", "StageFlow"]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of one group: offsets, lag in messages and seconds, Burrow status."""

    topic: str
    partition: int
    committed: int
    end_offset: int
    lag: int
    lag_seconds: float
    status: Status
    complete: float  # how full the commit window is (0..1)
    commits: int  # commits in the window
    last_commit_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end_offset": self.end_offset,
            "lag": self.lag,
            "lag_seconds": round(self.lag_seconds, 3),
            "status": self.status.value,
            "status_code": STATUS_NUMBER[self.status],
            "complete": self.complete,
            "commits": self.commits,
            "last_commit_ms": self.last_commit_ms,
        }


@dataclass(frozen=True, slots=True)
class GroupLag:
    """A consumer group: its worst partition's status (STOP/STALL/REWIND → ERR)."""

    group: str
    state: str
    status: Status
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def max_lag_seconds(self) -> float:
        return max((p.lag_seconds for p in self.partitions), default=0.0)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({p.topic for p in self.partitions}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "status": self.status.value,
            "status_code": STATUS_NUMBER[self.status],
            "total_lag": self.total_lag,
            "max_lag_seconds": round(self.max_lag_seconds, 3),
            "topics": list(self.topics),
            "partitions": [p.as_dict() for p in self.partitions],
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
    """Flows per stage, DLQ records by reason code, freshness per tier."""

    stages: tuple[StageFlow, ...] = ()
    topic_events: dict[str, int] = field(default_factory=dict)
    dlq_reasons: dict[str, int] = field(default_factory=dict)
    freshness: dict[str, Percentiles] = field(default_factory=dict)

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
class Snapshot:
    """One collection: every watched group and the pipeline's health, at ``taken_ms``."""

    taken_ms: int
    groups: tuple[GroupLag, ...]
    health: PipelineHealth = field(default_factory=PipelineHealth)

    @property
    def all_ok(self) -> bool:
        return all(g.status is Status.OK for g in self.groups)

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
        }
