"""Publishing a batch's outputs with confluent-kafka (the C client: one worker's outputs are
~5 messages per event, more than aiokafka comfortably carries), flushed once per batch.

A thin shell: produce everything, flush. A failure that concerns the whole producer (broker
away, timeout, a fatal error) raises :class:`~streams.exceptions.OutputError`, so the batch is
not committed and is processed again after restart. A failure that concerns one message only
(:data:`PER_MESSAGE_ERRORS`: too large, an invalid record) is returned by :meth:`flush` as a
:class:`Refused` instead, for the caller to dead-letter that message and go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from confluent_kafka import KafkaError, KafkaException, Message

from schemas.kafka import KafkaConnection, producer
from schemas.partition import PARTITIONER
from streams.config import APP_ID
from streams.exceptions import OutputError

if TYPE_CHECKING:
    from streams.pipeline import OutMessage

__all__ = ["PER_MESSAGE_ERRORS", "BatchPublisher", "Refused"]

logger = logging.getLogger(__name__)

#: Produce errors that are about the message, not the producer or the cluster.
PER_MESSAGE_ERRORS: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError._INVALID_ARG,
        KafkaError._KEY_SERIALIZATION,
        KafkaError._VALUE_SERIALIZATION,
    }
)


#: librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner picks the partition
_ANY_PARTITION: Final = -1


@dataclass(frozen=True, slots=True)
class Refused:
    """A message the producer or the broker refused for itself (``error`` says why)."""

    topic: str
    key: bytes | None
    value: bytes | None
    error: str


class BatchPublisher:
    """Idempotent producer; ``flush`` blocks until every message is acknowledged."""

    def __init__(self, kafka: KafkaConnection, *, client_id: str = APP_ID, **extra: Any) -> None:
        conf: dict[str, Any] = {
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "partitioner": PARTITIONER,
            # delivery callbacks only for failures: no Python call per acknowledged message
            "delivery.report.only.error": True,
            # a leader that is frozen (not dead: its connection stays open) holds in-flight
            # requests until this timeout; 10 s instead of 30 s lets them be retried on the
            # new leader (elected within ~9 s) well before a batch's flush deadline (60 s).
            # Idempotence makes the retry safe (tests/faults/test_replication.py, pause).
            "request.timeout.ms": 10000,
            # one callback for the producer, not one bound method and keyword dict per message
            "on_delivery": self._on_delivery,
        }
        conf.update(extra)
        self._producer = producer(kafka, conf)
        self._errors: list[str] = []
        self._refused: list[Refused] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        if err.code() in PER_MESSAGE_ERRORS and not err.fatal():
            self._refused.append(Refused(msg.topic() or "", msg.key(), msg.value(), str(err)))
        else:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        produce = self._producer.produce
        h: Any = headers or None  # (confluent-kafka's stubs want a list of str | bytes pairs)
        while True:
            try:
                if partition is None:
                    produce(topic, value, key, headers=h)
                else:
                    produce(topic, value, key, partition=partition, headers=h)
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not isinstance(err, KafkaError) or err.code() not in PER_MESSAGE_ERRORS:
                    raise
                self._refused.append(Refused(topic, key, value, str(err)))
                return

    def produce_many(self, messages: Iterable[OutMessage]) -> None:
        """:meth:`produce` of each ``(topic, key, value, headers, …)`` (``OutMessage``), to
        the partition the partitioner picks, in one loop: confluent-kafka's ``produce`` called
        with positional arguments (keywords cost it a look-up of each name it knows, ~0.5 µs
        per call), the retry and the refusal handling only for a message that raised."""
        produce: Any = self._producer.produce  # (its stubs want str | bytes header values)
        for topic, key, value, headers, _origin in messages:
            try:
                produce(topic, value, key, _ANY_PARTITION, None, None, 0, headers or None)
            except (BufferError, KafkaException):  # the queue full, or this message refused
                self.produce(topic, value, key, headers)

    def produce_partitioned(
        self, topic: str, messages: Iterable[tuple[bytes | None, bytes | None, int]]
    ) -> None:
        """:meth:`produce` of each ``(key, value, partition)`` to ``topic`` (no headers), in
        one loop as :meth:`produce_many`."""
        produce = self._producer.produce
        for key, value, partition in messages:
            try:
                produce(topic, value, key, partition)
            except (BufferError, KafkaException):
                self.produce(topic, value, key, None, partition)

    def flush(self, timeout_s: float = 60.0) -> list[Refused]:
        """Wait for every acknowledgement; the messages refused for themselves since the last
        flush. Raises :class:`OutputError` when anything else failed or is unacknowledged."""
        remaining = self._producer.flush(timeout_s)
        refused, self._refused = self._refused, []
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise OutputError(
                f"{remaining} messages unacknowledged, {len(errors)} failed: {errors[:3]}"
            )
        for r in refused:
            logger.error("output refused topic=%s error=%s", r.topic, r.error)
        return refused

    def close(self) -> None:
        self._producer.flush(10)
