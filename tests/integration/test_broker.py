"""The real broker: produce, consume, commit, and read committed offsets back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from deploy.broker import broker_answers
from schemas.kafka import KafkaConnection, admin, consumer, producer
from tests.helpers import wait_until

pytestmark = pytest.mark.broker


def test_broker_answers_metadata(kafka: KafkaConnection) -> None:
    assert broker_answers(kafka)
    md = admin(kafka).list_topics(timeout=10)
    assert md.brokers


def test_produce_consume_commit_and_read_offsets_back(
    kafka: KafkaConnection, make_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = make_topic(partitions=3)
    group = unique("group")
    p = producer(kafka, {"enable.idempotence": True})
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        p.produce(topic, key=key, value=value)
    assert p.flush(30) == 0

    c = consumer(
        kafka,
        {
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        },
    )
    c.subscribe([topic])
    received: dict[bytes, bytes] = {}

    def drained() -> bool:
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            received[key] = value
        return len(received) == len(sent)

    wait_until(drained, timeout=60, interval=0, message="all messages consumed")
    c.commit(asynchronous=False)
    c.close()
    assert received == sent

    request = [ConsumerGroupTopicPartitions(group)]
    client = admin(kafka)  # held while its futures complete
    result = client.list_consumer_group_offsets(request)[group].result(timeout=30)
    committed = {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == topic}
    probe = consumer(kafka, {"group.id": unique("probe")})
    ends = {
        p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)
    }
    probe.close()
    assert committed == ends
    assert sum(ends.values()) == len(sent)
