"""Every Kafka topic of the pipeline, declared once: name, partitions, retention, cleanup policy.

Station software publishes to ``station.changes``; everything downstream is derived. A
``prefix`` lets tests and parallel demos use their own namespace on a shared cluster.

Record-level data (the district and province tiers) travels in one of two shapes, because
Kafka's ACLs apply to topics and not to keys:

- ``province`` (the default, and every deployment's): one topic per province of today's
  map, ``tier.province.<code>`` (``province_topic``), carrying that province's records for
  both its district and its province store; a province's sink may read its own topic only.
- ``single`` (development and tests: 2 topics instead of 34): every province's records on
  ``tier.district`` and ``tier.province``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal

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
SIGNOFF = "signoff.decisions"
#: What was rejected, why, where and when, without the payload: for the monitor's reason
#: counts (it may not read the DLQ, which holds the rejected bytes).
REJECTIONS = "station.changes.rejections"

RecordTopics = Literal["province", "single"]
RECORD_TOPICS: Final[tuple[RecordTopics, ...]] = ("province", "single")
#: Partitions of each ``tier.province.<code>``: a province is ~1/34 of the national load.
PROVINCE_PARTITIONS = 3

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
    TopicSpec(
        REJECTIONS, 3, retention_ms=90 * DAY_MS, description="reason, stage, station, no payload"
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
    TopicSpec(
        SIGNOFF,
        3,
        retention_ms=-1,
        # the broker stamps each decision: its receive time is when the decision took effect
        config={"message.timestamp.type": "LogAppendTime"},
        description="signed approvals, send-backs and locks of monthly reports (a ledger)",
    ),
)


_SINGLE_ONLY: Final = frozenset({TIER_DISTRICT, TIER_PROVINCE})


def province_codes() -> tuple[str, ...]:
    """The provinces of today's map (34 since July 2025), sorted: one record-level topic,
    one sink principal and one store root each."""
    from schemas.hierarchy.merger import province_merger

    return tuple(sorted(set(province_merger().values())))


def province_topic_prefix(prefix: str = "") -> str:
    """``tier.province.``: what every per-province topic name starts with."""
    return f"{prefix}{TIER_PROVINCE}."


def province_topic(code: str, prefix: str = "") -> str:
    """The record-level topic of province ``code`` (today's code): ``tier.province.<code>``."""
    return province_topic_prefix(prefix) + code


def topic_specs(
    prefix: str = "",
    partitions: int | None = None,
    *,
    record_topics: RecordTopics = "province",
    provinces: tuple[str, ...] | None = None,
    dlq_retention_days: int | None = None,
) -> tuple[TopicSpec, ...]:
    """All topics of one shape (``record_topics``), with ``prefix`` prepended and optionally
    every partition count overridden (and the DLQ topic's retention, to match the DLQ
    store's). The ``province`` shape has a topic per province of ``provinces`` (default: all
    of today's) instead of ``tier.district``/``tier.province``."""
    dlq_ms = DAY_MS * dlq_retention_days if dlq_retention_days else None
    bases = [s for s in _SPECS if record_topics == "single" or s.name not in _SINGLE_ONLY]
    if record_topics == "province":
        tier = next(s for s in _SPECS if s.name == TIER_PROVINCE)
        for code in province_codes() if provinces is None else provinces:
            bases.append(
                TopicSpec(
                    name=province_topic(code),
                    partitions=PROVINCE_PARTITIONS,
                    retention_ms=tier.retention_ms,
                    description=f"province {code}'s record-level feed (district and province)",
                )
            )
    return tuple(
        TopicSpec(
            name=prefix + s.name,
            partitions=partitions or s.partitions,
            cleanup_policy=s.cleanup_policy,
            retention_ms=dlq_ms if dlq_ms and s.name == DLQ else s.retention_ms,
            config=dict(s.config),
            description=s.description,
        )
        for s in bases
    )


def replay_specs(specs: Iterable[TopicSpec], prefix: str = "") -> list[TopicSpec]:
    """``specs`` with the raw topic keeping the producers' CreateTime instead of the broker's
    LogAppendTime: only to replay recorded or simulated history (each message stamped with
    when its station sent it), read by workers run with ``--allow-create-time`` (development
    mode only). Never in production: received time, timeliness and key revocation would take
    a time the sender chose.

    Time-based retention and segment rolls count from those timestamps too: history older
    than the retention would be deleted before a worker read it (the worker then finds its
    offsets out of range), and every append of old history would roll a new segment. So the
    replayed raw topic keeps everything (``retention.ms`` -1) and rolls by size only."""
    raw = topic_name(RAW, prefix)
    return [
        replace(
            s,
            retention_ms=-1,
            config={
                **s.config,
                "message.timestamp.type": "CreateTime",
                "segment.ms": str(_REPLAY_SEGMENT_MS),
            },
        )
        if s.name == raw
        else s
        for s in specs
    ]


#: A replayed raw topic's ``segment.ms``: ~100 years, i.e. segments roll by size only.
_REPLAY_SEGMENT_MS = 100 * 365 * DAY_MS


def topic_name(base: str, prefix: str = "") -> str:
    """The full name of one of the base topic names above."""
    if base not in {s.name for s in _SPECS}:
        raise KeyError(f"unknown topic {base!r}")
    return prefix + base
