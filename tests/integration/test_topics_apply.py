from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import ConfigResource

from deploy.topics import apply_topics
from schemas.kafka import KafkaConnection, admin
from schemas.topics import TopicSpec, topic_specs

pytestmark = pytest.mark.broker


def test_apply_is_idempotent_and_updates(
    kafka: KafkaConnection, unique: Callable[[str], str]
) -> None:
    prefix = unique("apply") + "."
    specs = topic_specs(prefix, partitions=2)
    first = apply_topics(kafka, specs)
    assert {c.action for c in first} == {"created"}
    second = apply_topics(kafka, specs)
    assert {c.action for c in second} == {"unchanged"}

    grown = [
        TopicSpec(s.name, 4, s.cleanup_policy, 3_600_000, s.config, s.description) for s in specs
    ]
    third = apply_topics(kafka, grown)
    assert {c.action for c in third} == {"updated"}
    client = admin(kafka)
    md = client.list_topics(timeout=10)
    assert all(len(md.topics[s.name].partitions) == 4 for s in grown)
    res = ConfigResource(ConfigResource.Type.TOPIC, grown[0].name)
    cfg = client.describe_configs([res])[res].result(timeout=10)
    assert cfg["retention.ms"].value == "3600000"
