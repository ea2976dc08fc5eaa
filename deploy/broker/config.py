"""Each local KRaft node's ``server.properties``, generated in one place.

:func:`server_properties` is the only function that writes a node's settings, for the single
development broker and for every node of the local cluster. Listener names, security
protocols and any security settings come in as a :class:`ListenerSettings` parameter object:
a secured cluster (TLS, SASL/SCRAM, ACLs) passes its own instead of :data:`PLAINTEXT`, and
nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PLAINTEXT",
    "ListenerSettings",
    "NodeSpec",
    "replication_for",
    "server_properties",
    "write_properties",
]


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """How a node listens and how clients and peers authenticate.

    ``broker`` and ``controller`` name the listeners (clients and inter-broker traffic use
    ``broker``); ``protocols`` maps each listener name to its security protocol; ``extra``
    holds every further property a secured setup needs (``ssl.*``, ``sasl.*``,
    ``listener.name.*``, ``authorizer.class.name``, ``super.users`` …) and is applied last.
    """

    broker: str = "PLAINTEXT"
    controller: str = "CONTROLLER"
    protocols: Mapping[str, str] = field(
        default_factory=lambda: {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"}
    )
    extra: Mapping[str, str] = field(default_factory=dict)


PLAINTEXT = ListenerSettings()


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One KRaft node on loopback: its id, roles, ports and data folder."""

    node_id: int
    broker_port: int | None  # None: a controller-only node
    controller_port: int | None  # None: a broker-only node
    data_dir: Path

    @property
    def roles(self) -> str:
        roles = []
        if self.broker_port is not None:
            roles.append("broker")
        if self.controller_port is not None:
            roles.append("controller")
        return ",".join(roles)


def replication_for(brokers: int) -> tuple[int, int]:
    """Replication factor and ``min.insync.replicas`` for a cluster of ``brokers``: 3 and 2
    from three brokers on (``acks=all`` keeps writing through the loss of one), else all
    brokers and 1."""
    if brokers >= 3:
        return 3, 2
    return max(1, brokers), 1


def server_properties(
    node: NodeSpec,
    controllers: Sequence[NodeSpec],
    *,
    brokers: int,
    listeners: ListenerSettings = PLAINTEXT,
    host: str = "127.0.0.1",
) -> dict[str, str]:
    """The properties of ``node`` in a cluster whose controller quorum is ``controllers`` and
    which has ``brokers`` broker nodes (replication settings follow from that count)."""
    rf, min_isr = replication_for(brokers)
    voters = ",".join(f"{c.node_id}@{host}:{c.controller_port}" for c in controllers)
    bound: list[str] = []
    if node.broker_port is not None:
        bound.append(f"{listeners.broker}://{host}:{node.broker_port}")
    if node.controller_port is not None:
        bound.append(f"{listeners.controller}://{host}:{node.controller_port}")
    props = {
        "process.roles": node.roles,
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": ",".join(bound),
        "controller.listener.names": listeners.controller,
        "listener.security.protocol.map": ",".join(
            f"{k}:{v}" for k, v in listeners.protocols.items()
        ),
        "inter.broker.listener.name": listeners.broker,
        "log.dirs": str(node.data_dir),
        "num.partitions": "3",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(rf),
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "3",
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "group.consumer.min.session.timeout.ms": "1000",
        "group.min.session.timeout.ms": "1000",
        "auto.create.topics.enable": "true",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    if node.broker_port is not None:
        props["advertised.listeners"] = f"{listeners.broker}://{host}:{node.broker_port}"
    if brokers > 1:
        # a dev cluster notices a frozen follower in seconds (leaders drop it from the ISR
        # after 5 s without a fetch, before the controller fences it after 9 s without a
        # heartbeat, Kafka's default); never elect an out-of-sync leader
        props.update(
            {
                "broker.heartbeat.interval.ms": "1000",
                "broker.session.timeout.ms": "9000",
                "replica.lag.time.max.ms": "5000",
                "unclean.leader.election.enable": "false",
            }
        )
    props.update(listeners.extra)
    return props


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    """Write ``props`` as a Java properties file, readable by its owner only (a secured
    node's file holds the admin credential)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in props.items()))
    path.chmod(0o600)
