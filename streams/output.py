"""Publishing a batch's outputs with confluent-kafka (the C client: one worker's outputs are
~5 messages per event, more than aiokafka comfortably carries), flushed once per batch.

A thin shell: produce everything, flush, raise :class:`~streams.exceptions.OutputError` if
any message failed, so the batch is not committed and is processed again after restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, Message

from schemas.kafka import KafkaConnection, producer
from streams.exceptions import OutputError
from streams.pipeline import OutMessage

__all__ = ["BatchPublisher"]

logger = logging.getLogger(__name__)


class BatchPublisher:
    """Idempotent producer; ``publish`` blocks until every message is acknowledged."""

    def __init__(
        self, kafka: KafkaConnection, *, client_id: str = "tuyen-streams", **extra: Any
    ) -> None:
        conf: dict[str, Any] = {
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "partitioner": "murmur2_random",
            # delivery callbacks only for failures: no Python call per acknowledged message
            "delivery.report.only.error": True,
            # a leader that is frozen (not dead: its connection stays open) holds in-flight
            # requests until this timeout; 10 s instead of 30 s lets them be retried on the
            # new leader (elected within ~9 s) well before a batch's flush deadline (60 s).
            # Idempotence makes the retry safe (tests/faults/test_replication.py, pause).
            "request.timeout.ms": 10000,
        }
        conf.update(extra)
        self._producer = producer(kafka, conf)
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"on_delivery": self._on_delivery}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                self._producer.poll(0.05)

    def publish(self, messages: Iterable[OutMessage], *, timeout_s: float = 60.0) -> int:
        """Produce ``messages`` and wait for all acknowledgements. Returns the count."""
        n = 0
        for m in messages:
            self.produce(m.topic, m.value, m.key, m.headers)
            n += 1
        self.flush(timeout_s)
        return n

    def flush(self, timeout_s: float = 60.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise OutputError(
                f"{remaining} messages unacknowledged, {len(errors)} failed: {errors[:3]}"
            )

    def close(self) -> None:
        self._producer.flush(10)
