"""Every Kafka topic of the pipeline, declared once: name, partitions, retention, cleanup policy.

Station software publishes to ``station.changes``; everything downstream is derived. A
``prefix`` lets tests and parallel demos use their own namespace on a shared cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000
#: How long dead letters are kept, in the DLQ topic and the DLQ store (``tuyen dlq expire``);
#: ``TUYEN_DLQ_RETENTION_DAYS`` overrides it for both.
DLQ_RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic's declaration. ``config`` holds broker topic configs (strings, as Kafka wants)."""

    name: str
    partitions: int
    cleanup_policy: str = "delete"
    retention_ms: int = 30 * DAY_MS
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def broker_config(self) -> dict[str, str]:
        """The topic-level configs to apply on the broker."""
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        cfg.update(self.config)
        return cfg


# Base names (without prefix). Partition counts spread the national load by record key;
# 12 is enough for one small cluster and divides evenly among 1, 2, 3, 4, 6 or 12 workers.
RAW = "station.changes"
VALID = "changes.valid"
DLQ = "station.changes.dlq"
TIER_DISTRICT = "tier.district"
TIER_PROVINCE = "tier.province"
TIER_NATIONAL = "tier.national"
AGGREGATES = "aggregates.live"

_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(
        RAW,
        12,
        retention_ms=30 * DAY_MS,
        # the broker stamps each message when it receives it: received_time, timeliness and
        # key revocation use that time, which a station cannot choose (its CreateTime is
        # replaced)
        config={"message.timestamp.type": "LogAppendTime"},
        description="raw record changes from stations",
    ),
    TopicSpec(VALID, 12, retention_ms=14 * DAY_MS, description="validated, enriched changes"),
    TopicSpec(
        DLQ,
        3,
        retention_ms=DLQ_RETENTION_DAYS * DAY_MS,
        description="rejected input with its reason",
    ),
    TopicSpec(TIER_DISTRICT, 12, retention_ms=14 * DAY_MS, description="district stores' feed"),
    TopicSpec(TIER_PROVINCE, 12, retention_ms=14 * DAY_MS, description="province stores' feed"),
    TopicSpec(TIER_NATIONAL, 12, retention_ms=14 * DAY_MS, description="pseudonymised feed"),
    TopicSpec(
        AGGREGATES,
        6,
        cleanup_policy="compact",
        retention_ms=-1,
        description="live tiered aggregates, latest value per (unit, period, element)",
    ),
)


def topic_specs(
    prefix: str = "", partitions: int | None = None, *, dlq_retention_days: int | None = None
) -> tuple[TopicSpec, ...]:
    """All topics, with ``prefix`` prepended and optionally every partition count overridden
    (and the DLQ topic's retention, to match the DLQ store's)."""
    dlq_ms = DAY_MS * dlq_retention_days if dlq_retention_days else None
    return tuple(
        TopicSpec(
            name=prefix + s.name,
            partitions=partitions or s.partitions,
            cleanup_policy=s.cleanup_policy,
            retention_ms=dlq_ms if dlq_ms and s.name == DLQ else s.retention_ms,
            config=dict(s.config),
            description=s.description,
        )
        for s in _SPECS
    )


def topic_name(base: str, prefix: str = "") -> str:
    """The full name of one of the base topic names above."""
    if base not in {s.name for s in _SPECS}:
        raise KeyError(f"unknown topic {base!r}")
    return prefix + base
