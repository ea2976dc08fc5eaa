"""The development broker `tuyen broker up` leaves running, and how every command finds a
broker: ``KAFKA_BOOTSTRAP`` (with the ``TUYEN_KAFKA_*`` security settings) when set, else the
broker `tuyen broker up` started (a container, a single node from local jars, or the local
three-node cluster of `tuyen broker up --brokers 3`, recorded under ``TUYEN_HOME``).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import orjson

from deploy.broker.cluster import LocalCluster
from deploy.broker.local import LocalBroker
from deploy.broker.probe import broker_answers
from deploy.broker.provision import provision
from deploy.exceptions import BrokerError, NoBroker
from deploy.settings import Settings
from schemas.kafka import KafkaConnection

__all__ = [
    "BrokerStarted",
    "current_connection",
    "external_connection",
    "local_cluster",
    "local_metrics_urls",
    "require_connection",
    "start_default",
    "stop_default",
]

logger = logging.getLogger(__name__)

_DEFAULT = "default"
_CLUSTER = "cluster"


def _state_dir(s: Settings) -> Path:
    return s.home / "brokers" / _DEFAULT


def _container_file(s: Settings) -> Path:
    return _state_dir(s) / "container.json"


def _local(s: Settings) -> LocalBroker:
    return LocalBroker(_state_dir(s), s.home)


def local_cluster(s: Settings, *, size: int = 3, cache_dir: Path | None = None) -> LocalCluster:
    """The local cluster of ``size`` nodes `tuyen broker up --brokers N` runs under
    ``TUYEN_HOME`` (the jars cached in ``cache_dir``, default ``TUYEN_HOME``)."""
    return LocalCluster(s.home / "brokers" / _CLUSTER, cache_dir or s.home, size=size)


def local_metrics_urls(s: Settings) -> list[str]:
    """``<node id>=<url>`` of the JMX exporter of each node of the cluster `tuyen broker up
    --brokers 3` started (none with ``KAFKA_BOOTSTRAP``, a single broker or no broker)."""
    if s.kafka_bootstrap:
        return []
    state = local_cluster(s).state()
    return [f"{n.node_id}={n.metrics_url}" for n in state.nodes] if state else []


def _container_state(s: Settings) -> dict[str, str] | None:
    path = _container_file(s)
    return orjson.loads(path.read_bytes()) if path.exists() else None


def external_connection(s: Settings) -> KafkaConnection | None:
    """The existing cluster the settings name (``KAFKA_BOOTSTRAP``), or ``None``."""
    return s.kafka_connection() if s.kafka_bootstrap else None


def current_connection(s: Settings) -> KafkaConnection | None:
    """The broker to use: ``KAFKA_BOOTSTRAP``'s cluster, else the broker or cluster `tuyen
    broker up` started (PLAINTEXT on loopback), else ``None``."""
    external = external_connection(s)
    if external is not None:
        return external
    cont = _container_state(s)
    if cont is not None:
        return KafkaConnection(bootstrap=cont["bootstrap"])
    state = _local(s).state()
    if state is not None:
        return KafkaConnection(bootstrap=state.bootstrap)
    cluster = local_cluster(s).state()
    return cluster.kafka if cluster else None


def require_connection(s: Settings) -> KafkaConnection:
    """:func:`current_connection`, or :class:`NoBroker` saying how to get one."""
    found = current_connection(s)
    if found is None:
        raise NoBroker("no broker: set KAFKA_BOOTSTRAP or run `tuyen broker up` first")
    return found


@dataclass(frozen=True, slots=True)
class BrokerStarted:
    """What `tuyen broker up` found or started."""

    kafka: KafkaConnection
    mode: str
    already_running: bool = False
    metrics_urls: tuple[str, ...] = ()  # the cluster nodes' JMX exporters


def start_default(s: Settings, brokers: int = 1) -> BrokerStarted:
    """Start the default development broker, or a local cluster of ``brokers`` KRaft nodes
    (from the jars), unless one answers already (or use ``KAFKA_BOOTSTRAP``); it outlives
    this process until :func:`stop_default`. A running local setup of another size is an
    error (:class:`BrokerError`): stop it first."""
    existing = current_connection(s)
    if existing is not None and broker_answers(existing):
        running = len(existing.bootstrap.split(","))
        if not s.kafka_bootstrap and running != brokers:
            raise BrokerError(
                f"a local {running}-broker setup already runs at {existing.bootstrap}; "
                "`tuyen broker down` it first"
            )
        return BrokerStarted(existing, "running", already_running=True)
    if brokers > 1 and not s.kafka_bootstrap:
        state = local_cluster(s, size=brokers).start()
        return BrokerStarted(
            state.kafka,
            "cluster",
            metrics_urls=tuple(n.metrics_url for n in state.nodes),
        )
    if s.broker_mode in {"auto", "container"} and not s.kafka_bootstrap:
        from deploy.broker.container import docker_answers, start_container

        if s.broker_mode == "container" or docker_answers():
            os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # outlive this CLI
            container, bootstrap = start_container()
            path = _container_file(s)
            path.parent.mkdir(parents=True, exist_ok=True)
            cid = container.get_wrapped_container().id
            path.write_bytes(orjson.dumps({"id": cid, "bootstrap": bootstrap}))
            return BrokerStarted(KafkaConnection(bootstrap=bootstrap), "container")
    handle = provision(mode=s.broker_mode, external=external_connection(s), home=s.home)
    return BrokerStarted(handle.kafka, handle.mode)


def stop_default(s: Settings, *, purge: bool = False) -> str:
    """Stop the broker :func:`start_default` started (exactly that process); what happened."""
    if s.kafka_bootstrap:
        return "KAFKA_BOOTSTRAP is set: that cluster is not ours to stop"
    cont = _container_state(s)
    if cont is not None:
        import docker

        docker.from_env().containers.get(cont["id"]).stop()
        _container_file(s).unlink()
        return "container stopped"
    broker, cluster = _local(s), local_cluster(s)
    stopped = broker.stop()
    stopped = cluster.stop() or stopped
    if purge:
        shutil.rmtree(broker.state_dir, ignore_errors=True)
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
    return "broker stopped" if stopped else "no broker was running"
