"""Create or update the pipeline's topics idempotently (``tuyen topics apply``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from deploy.broker.config import replication_for
from deploy.exceptions import TopicError
from schemas.kafka import KafkaConnection, admin
from schemas.topics import TopicSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicChange:
    """What ``apply`` did to one topic: created, updated (what) or unchanged."""

    name: str
    action: str
    detail: str = ""


def apply_topics(
    kafka: KafkaConnection,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int | None = None,
    timeout_s: float = 30,
) -> list[TopicChange]:
    """Make the cluster match ``specs``: create missing topics, grow partitions, set configs.

    Partitions are never shrunk (Kafka cannot); a spec asking for fewer is reported.
    Replication follows the cluster's size (:func:`deploy.broker.config.replication_for`):
    from three brokers on, replication factor 3 and ``min.insync.replicas`` 2, so
    ``acks=all`` producers keep writing through the loss of one broker; on fewer brokers,
    all of them and 1. ``min.insync.replicas`` of an existing topic follows its actual
    replication factor (Kafka does not change the factor of an existing topic).
    """
    client = admin(kafka)
    specs = list(specs)
    md = client.list_topics(timeout=timeout_s)
    existing = md.topics
    rf, min_isr = replication_for(len(md.brokers))
    if replication_factor is not None:
        rf, min_isr = replication_factor, replication_for(replication_factor)[1]
    changes: list[TopicChange] = []

    to_create = [s for s in specs if s.name not in existing]
    if to_create:
        futures = client.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=rf,
                    config={**s.broker_config(), "min.insync.replicas": str(min_isr)},
                )
                for s in to_create
            ],
            operation_timeout=timeout_s,
        )
        for name, fut in futures.items():
            try:
                fut.result(timeout=timeout_s)
                changes.append(TopicChange(name, "created"))
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise TopicError(f"could not create topic {name}: {exc}") from exc
                changes.append(TopicChange(name, "unchanged", "created concurrently"))

    for spec in (s for s in specs if s.name in existing):
        parts = existing[spec.name].partitions
        actual_rf = max((len(p.replicas) for p in parts.values()), default=1)
        wanted = {**spec.broker_config(), "min.insync.replicas": str(replication_for(actual_rf)[1])}
        changes.append(_update(client, spec, len(parts), wanted, timeout_s))
    return changes


def raw_topic_problems(
    kafka: KafkaConnection, topic: str, partitions: int, *, timeout_s: float = 30
) -> list[str]:
    """What makes ``topic`` unfit as the stream worker's raw input: missing, a partition count
    other than ``partitions`` (the worker checks each message's murmur2 partition against
    it), or a timestamp type other than ``LogAppendTime`` (received time, timeliness and key
    revocation must not take a time the sender chose)."""
    client = admin(kafka)
    deadline = time.monotonic() + timeout_s
    while True:  # a topic just created takes a moment to show in the metadata
        # (all topics: naming one in a metadata request may auto-create it)
        found = client.list_topics(timeout=timeout_s).topics.get(topic)
        if found is not None and found.error is None:
            break
        if time.monotonic() >= deadline:
            return [f"topic {topic} does not exist"]
        time.sleep(0.2)
    problems = []
    if len(found.partitions) != partitions:
        problems.append(
            f"topic {topic} has {len(found.partitions)} partitions, the worker is configured "
            f"for {partitions} (TUYEN_TOPIC_PARTITIONS / --partitions)"
        )
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = client.describe_configs([resource])[resource].result(timeout=timeout_s)
    kind = described.get("message.timestamp.type")
    if kind is None or kind.value != "LogAppendTime":
        problems.append(
            f"topic {topic} has message.timestamp.type="
            f"{kind.value if kind is not None else '?'}, it must be LogAppendTime "
            "(run `tuyen topics apply`)"
        )
    return problems


def _update(
    client: AdminClient, spec: TopicSpec, current: int, wanted: dict[str, str], timeout_s: float
) -> TopicChange:
    details: list[str] = []
    if spec.partitions > current:
        fut = client.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name]
        fut.result(timeout=timeout_s)
        details.append(f"partitions {current}->{spec.partitions}")
    elif spec.partitions < current:
        logger.warning(
            "topic has more partitions than declared topic=%s declared=%s actual=%s",
            spec.name,
            spec.partitions,
            current,
        )
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    described = client.describe_configs([resource])[resource].result(timeout=timeout_s)
    differing = {k: v for k, v in wanted.items() if k not in described or described[k].value != v}
    if differing:
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in differing.items()
        ]
        target = ConfigResource(ConfigResource.Type.TOPIC, spec.name, incremental_configs=entries)
        client.incremental_alter_configs([target])[target].result(timeout=timeout_s)
        details.append("config " + ",".join(f"{k}={v}" for k, v in sorted(differing.items())))
    if details:
        return TopicChange(spec.name, "updated", "; ".join(details))
    return TopicChange(spec.name, "unchanged")
