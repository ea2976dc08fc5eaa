"""A message the producer refuses by itself (larger than its ``message.max.bytes``) comes back
from ``BatchPublisher.flush`` as a refusal to dead-letter, not as an error that stops the
worker (the broker-side refusal is in tests/integration/test_broker_time.py)."""

from __future__ import annotations

from typing import Any

from schemas.kafka import KafkaConnection
from streams.output import BatchPublisher


def test_local_size_refusal_is_reported_per_message() -> None:
    limit: dict[str, Any] = {"message.max.bytes": 1000}
    publisher = BatchPublisher(KafkaConnection(bootstrap="127.0.0.1:9"), **limit)
    publisher.produce("t", b"x" * 5000, b"k")
    refused = publisher.flush(1)
    assert [(r.topic, r.key, len(r.value or b"")) for r in refused] == [("t", b"k", 5000)]
    assert "MSG_SIZE_TOO_LARGE" in refused[0].error
    assert publisher.flush(1) == []
