from __future__ import annotations

from pathlib import Path

import pytest

from deploy.broker import provision
from deploy.broker.jars import lock_entries
from deploy.exceptions import BrokerError, BrokerUnavailable
from schemas.kafka import KafkaConnection


def test_external_mode_needs_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="KAFKA_BOOTSTRAP"):
        provision(mode="external", external=None, home=tmp_path)


def test_unreachable_bootstrap_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable):
        provision(mode="auto", external=KafkaConnection(bootstrap="127.0.0.1:1"), home=tmp_path)


def test_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="unknown broker mode"):
        provision(mode="zookeeper", external=None, home=tmp_path)


def test_lock_pins_the_broker_and_its_dependencies() -> None:
    entries = lock_entries()
    assert "kafka_2.13-4.4.0.jar" in entries
    assert "kafka-clients-4.4.0.jar" in entries
    assert all(len(d) == 64 for d in entries.values())
