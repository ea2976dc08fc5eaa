"""The contract's partitioner against librdkafka on a real broker: a producer built by
``schemas.kafka.producer`` without a word about partitioning (as every producer of the project
is) puts every key where ``schemas.partition`` says (so the stream worker accepts it), and the
same events from a CRC32 (``consistent_random``, librdkafka's default) producer are either
recognised as duplicates (same partition) or dead-lettered ``wrong_partition`` — never
accepted twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from schemas import KafkaMessage, Reason
from schemas.hierarchy import Hierarchy
from schemas.kafka import ClientConfig, KafkaConnection, consumer, producer
from schemas.partition import partition_for
from streams.pipeline import BatchProcessor
from streams.pseudonymise import Pseudonymiser
from streams.validate import RawMessage, Validator
from tests.data.bad_inputs import EventFactory
from tests.helpers import wait_until

pytestmark = [pytest.mark.broker]

PARTITIONS = 12
#: librdkafka's own default partitioner (the one test allowed to name another partitioner:
#: tests/unit/schemas/test_kafka_connection.py)
CRC32: ClientConfig = {"partitioner": "consistent_random"}


def _produce(
    kafka: KafkaConnection, topic: str, msgs: list[KafkaMessage], settings: ClientConfig
) -> None:
    p = producer(kafka, {"linger.ms": 5, **settings})
    for m in msgs:
        p.produce(topic, m.value, m.key, headers=list(m.headers))
    assert p.flush(30) == 0


def _consume(kafka: KafkaConnection, topic: str, n: int) -> list[RawMessage]:
    c = consumer(
        kafka,
        {
            "group.id": topic + "-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        },
    )
    c.subscribe([topic])
    got: list[RawMessage] = []

    def enough() -> bool:
        for m in c.consume(500, timeout=0.5):
            if m.error() is None:
                got.append(
                    RawMessage(
                        m.key(),
                        m.value(),
                        list(m.headers() or []),  # type: ignore[arg-type]
                        topic,
                        m.partition() or 0,
                        m.offset() or 0,
                        datetime.fromtimestamp(m.timestamp()[1] / 1000, UTC),
                    )
                )
        return len(got) >= n

    try:
        wait_until(enough, timeout=60, message="messages back")
    finally:
        c.close()
    return got


def test_murmur2_producer_is_accepted_crc32_never_twice(
    kafka: KafkaConnection, make_topic: Callable[..., str]
) -> None:
    f = EventFactory()
    events = [f.message(f.change("encounter")) for _ in range(120)]
    murmur = make_topic("murmur", partitions=PARTITIONS)
    crc = make_topic("crc", partitions=PARTITIONS)
    _produce(kafka, murmur, events, {})  # the default of every producer of the project
    _produce(kafka, crc, events, CRC32)
    first = _consume(kafka, murmur, len(events))
    again = _consume(kafka, crc, len(events))
    assert all(m.partition == partition_for(m.key or b"", PARTITIONS) for m in first)
    moved = sum(m.partition != partition_for(m.key or b"", PARTITIONS) for m in again)
    assert moved > len(events) // 2, "CRC32 puts most keys on another partition"

    validator = Validator(Hierarchy.default(), f.key_registry(), partitions=PARTITIONS)
    p = BatchProcessor(validator, Pseudonymiser("k"))
    out = p.process(first)
    assert out.accepted == len(events) and not out.rejected
    out = p.process(again)
    assert out.accepted == 0, "an event published with another partitioner is never accepted twice"
    assert out.rejected == {Reason.WRONG_PARTITION.value: moved}
    assert out.duplicates == len(events) - moved
