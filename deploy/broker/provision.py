"""Get a real Kafka broker: an existing cluster, a Docker container, or local jars.

The order is the project's rule: ``KAFKA_BOOTSTRAP`` when set (start nothing); else the
official image through testcontainers when a Docker engine answers; else a single-node
KRaft broker run from Apache Kafka's jars, fetched once and cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.broker.cluster import LocalCluster
from deploy.broker.container import docker_answers, start_container
from deploy.broker.local import LocalBroker
from deploy.broker.secure import BrokerSecurity
from deploy.exceptions import BrokerError, BrokerUnavailable
from deploy.principals import ADMIN, Principals
from schemas.kafka import KafkaConnection, KafkaUnreachable, check_connection

logger = logging.getLogger(__name__)


@dataclass
class BrokerHandle:
    """A broker to use: how to connect to it, how it was obtained, and how to let it go.

    The brokers this package starts are on loopback: PLAINTEXT, or secured (``security``:
    TLS, SCRAM, ACLs; ``kafka`` is then the admin's connection)."""

    kafka: KafkaConnection
    mode: str
    local: LocalBroker | None = None
    cluster: LocalCluster | None = None
    security: BrokerSecurity | None = None
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def secured(self) -> bool:
        return self.security is not None

    def connection(self, principal: str = ADMIN) -> KafkaConnection:
        """The connection as ``principal`` (a secured local broker; the one connection of a
        PLAINTEXT or external broker whoever asks)."""
        if self.security is None:
            return self.kafka
        return self.security.connection(self.kafka.bootstrap, principal)

    def grant(self, users: Principals) -> None:
        """Create ``users`` with their ACLs on a secured local broker (nothing to do on a
        PLAINTEXT one, where nobody is checked)."""
        if self.security is not None:
            self.security.grant(self.kafka.bootstrap, users)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def stop(self) -> None:
        """Stop what this handle started (nothing for an external cluster)."""
        if self._stop is not None:
            self._stop()
            self._stop = None


def provision(
    *,
    mode: str,
    external: KafkaConnection | None,
    home: Path,
    state_name: str = "default",
    tie_to_parent: bool = False,
    brokers: int = 1,
    secure: bool = False,
) -> BrokerHandle:
    """Return a broker that answers metadata requests, starting one if needed.

    ``external``: the connection to an existing cluster (``KAFKA_BOOTSTRAP`` and the
    ``TUYEN_KAFKA_*`` security settings), used as it is. ``brokers`` > 1 asks for a local
    multi-broker cluster (KRaft, from the jars; Docker is not used for it). ``secure``: the
    local broker or cluster runs with TLS, SCRAM and ACLs (``deploy.broker.secure``; from the
    jars too)."""
    if mode not in {"auto", "external", "container", "local"}:
        raise BrokerError(f"unknown broker mode {mode!r}")
    if external is not None and mode in {"auto", "external"}:
        try:
            check_connection(external, timeout_s=10.0)
        except KafkaUnreachable as exc:
            raise BrokerUnavailable(f"KAFKA_BOOTSTRAP: {exc.message}") from None
        logger.info("using existing cluster bootstrap=%s", external.bootstrap)
        return BrokerHandle(external, "external")
    if mode == "external":
        raise BrokerError("broker mode 'external' needs KAFKA_BOOTSTRAP")
    state_dir = home / "brokers" / state_name
    security = BrokerSecurity(state_dir / "security") if secure else None
    if (brokers > 1 or secure) and mode == "container":
        raise BrokerError("a multi-broker or secured broker runs from the jars (mode local)")
    if brokers > 1:
        cluster = LocalCluster(state_dir, home, size=brokers, security=security)
        cluster.start(tie_to_parent=tie_to_parent)

        def stop_cluster() -> None:
            cluster.stop()

        return BrokerHandle(
            cluster.kafka, "cluster", cluster=cluster, security=security, _stop=stop_cluster
        )
    if not secure and (mode == "container" or (mode == "auto" and docker_answers())):
        container, bootstrap = start_container()
        return BrokerHandle(KafkaConnection(bootstrap=bootstrap), "container", _stop=container.stop)
    broker = LocalBroker(state_dir, home, security=security)
    state = broker.start(tie_to_parent=tie_to_parent)

    def stop() -> None:
        broker.stop()

    return BrokerHandle(
        broker.connection(state.bootstrap), "local", local=broker, security=security, _stop=stop
    )
