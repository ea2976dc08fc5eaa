"""The official Apache Kafka image in KRaft mode, via testcontainers, when Docker answers."""

from __future__ import annotations

import logging
import time
from typing import Any

from deploy.broker.jars import KAFKA_VERSION
from deploy.broker.local import free_port
from deploy.broker.probe import broker_answers
from deploy.exceptions import BrokerUnavailable

logger = logging.getLogger(__name__)

IMAGE = f"apache/kafka:{KAFKA_VERSION}"


def docker_answers(timeout_s: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (a client binary alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout_s)))
        return bool(client.ping())
    except Exception:
        return False


def start_container(deadline_s: float = 120.0) -> tuple[Any, str]:
    """Start a KRaft broker container; returns (container, bootstrap).

    The host port is chosen first and mapped 1:1 so that the advertised listener is the
    address clients on this host use.
    """
    from testcontainers.core.container import DockerContainer

    port = free_port()
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://localhost:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "6",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
        "KAFKA_NUM_PARTITIONS": "3",
    }
    container = DockerContainer(IMAGE).with_bind_ports(port, port)
    for key, value in env.items():
        container = container.with_env(key, value)
    container.start()
    bootstrap = f"127.0.0.1:{port}"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if broker_answers(bootstrap, timeout_s=1.0):
            logger.info("kafka container ready bootstrap=%s image=%s", bootstrap, IMAGE)
            return container, bootstrap
        time.sleep(0.5)
    logs = container.get_logs()
    container.stop()
    raise BrokerUnavailable(f"Kafka container did not answer within {deadline_s:.0f}s: {logs!r}")
