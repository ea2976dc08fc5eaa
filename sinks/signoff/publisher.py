"""Publishing signed decisions to ``signoff.decisions`` and waiting for the broker's word.

The topic uses ``LogAppendTime``: the timestamp the broker returns in the delivery report is
its own receive time, which is when the decision takes effect (and what timeliness uses).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from schemas.kafka import KafkaConnection, producer
from schemas.signoff import SignoffDecision, decision_key
from sinks.reports.exceptions import ReportError

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message

__all__ = ["KafkaDecisionPublisher", "PublishFailed"]


class PublishFailed(ReportError):
    """The broker did not confirm a decision: it is not in effect (retry)."""

    retryable = True
    exit_code = 5
    label = "not confirmed:"


class KafkaDecisionPublisher:
    """An idempotent producer (acks=all) for sign-off decisions, one flush per decision."""

    def __init__(self, kafka: KafkaConnection, topic: str, *, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = producer(
            kafka,
            {
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(timeout_s * 1000),
            },
        )

    def publish(self, decision: SignoffDecision) -> datetime:
        got: list[tuple[KafkaError | None, Message]] = []
        self._producer.produce(
            self.topic,
            key=decision_key(decision),
            value=decision.to_json(),
            on_delivery=lambda err, msg: got.append((err, msg)),
        )
        left = self._producer.flush(self.timeout_s)
        if left or not got:
            raise PublishFailed(f"the broker did not confirm decision {decision.id} in time")
        err, msg = got[0]
        if err is not None:
            raise PublishFailed(f"decision {decision.id} was not stored: {err}")
        _kind, ms = msg.timestamp()
        return datetime.fromtimestamp(ms / 1000, UTC)
