"""The monitor's offset reads while a cluster's leaders settle: asked again, not failed."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from schemas.kafka import KafkaConnection
from streams.monitor.exceptions import BrokerQueryError
from streams.monitor.kafka_io import KafkaClients


class _Listed:
    def __init__(self, offset: int) -> None:
        self.offset, self.timestamp = offset, 0


class _Admin:
    """``list_offsets`` answering ``errors`` first (one per call), then offset 7."""

    def __init__(self, errors: list[int]) -> None:
        self.errors, self.calls = list(errors), 0

    def list_offsets(self, req: dict[TopicPartition, Any], **_: Any) -> dict[Any, Future[Any]]:
        self.calls += 1
        out: dict[Any, Future[Any]] = {}
        for tp in req:
            fut: Future[Any] = Future()
            if self.errors:
                fut.set_exception(KafkaException(KafkaError(self.errors[0])))
            else:
                fut.set_result(_Listed(7))
            out[tp] = fut
        if self.errors:
            self.errors.pop(0)
        return out


def _clients(errors: list[int], timeout_s: float = 5.0) -> tuple[KafkaClients, _Admin]:
    clients = KafkaClients(KafkaConnection(bootstrap="127.0.0.1:9"), timeout_s=timeout_s)
    fake = _Admin(errors)
    clients.admin = fake  # type: ignore[assignment]
    return clients, fake


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.LEADER_NOT_AVAILABLE])
def test_a_settling_cluster_is_asked_again(code: int) -> None:
    clients, fake = _clients([code, code])
    assert clients.offsets([("t", 0), ("t", 1)], OffsetSpec.latest) == {("t", 0): 7, ("t", 1): 7}
    assert fake.calls == 3


def test_other_errors_fail_at_once_and_settling_ones_at_the_timeout() -> None:
    clients, fake = _clients([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(BrokerQueryError, match="TOPIC_AUTHORIZATION_FAILED"):
        clients.end_offsets([("t", 0)])
    assert fake.calls == 1
    clients, fake = _clients([KafkaError.UNKNOWN_LEADER_EPOCH] * 1000, timeout_s=0.3)
    with pytest.raises(BrokerQueryError, match="UNKNOWN_LEADER_EPOCH"):
        clients.end_offsets([("t", 0)])
    assert 1 < fake.calls < 10
