"""A secured local broker: TLS, SASL/SCRAM-SHA-512, Kafka's StandardAuthorizer, deny by default.

What the local nodes run with (:meth:`BrokerSecurity.listeners`, passed to
``deploy.broker.config.server_properties``), for one node or a cluster alike:

- every listener is ``SASL_SSL`` (TLS with the project's development CA, ``deploy.broker.tls``);
- clients and inter-broker replication use the ``BROKER`` listener with SCRAM-SHA-512; the
  brokers authenticate to each other as ``admin``;
- controller traffic (broker → controller, controller ↔ controller) uses the ``CONTROLLER``
  listener with SASL/PLAIN as ``admin``: Kafka does not support SCRAM there (SCRAM
  credentials live in the metadata log the controllers serve), so the admin credential is
  in the nodes' configuration files (0600) instead;
- ``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``, and the only super user
  is ``admin`` (no ``ANONYMOUS``, no PLAINTEXT listener at all).

The admin SCRAM credential is written into the metadata when the storage is formatted
(``kafka-storage format --add-scram``); every other principal (``deploy.principals``) gets its
SCRAM credential and its ACLs through the AdminClient, as admin (:meth:`grant`). Passwords are
generated once and kept in ``credentials.json`` (0600) beside the certificates, so a
restarted broker and the commands of this machine find them.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from pydantic import SecretStr

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding

from deploy.broker.config import ListenerSettings
from deploy.broker.tls import TlsFiles, ensure_tls
from deploy.exceptions import BrokerError
from deploy.principals import ADMIN, Acl
from schemas.kafka import KafkaConnection, KafkaUnreachable, admin, check_connection

__all__ = ["SCRAM_ITERATIONS", "BrokerSecurity", "write_cluster_secrets"]

logger = logging.getLogger(__name__)

SCRAM_ITERATIONS = 8192
_MECHANISM = "SCRAM-SHA-512"
_CREDENTIALS = "credentials.json"


def _jaas(module: str, user: str, password: str, *, serves: bool = False) -> str:
    served = f' user_{user}="{password}"' if serves else ""
    return f'{module} required username="{user}" password="{password}"{served};'


class BrokerSecurity:
    """The certificates, principals' passwords and listener settings of one secured local
    broker or cluster, kept in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- files ------------------------------------------------------------------------
    @property
    def tls(self) -> TlsFiles:
        return ensure_tls(self.directory / "tls")

    @property
    def ca(self) -> Path:
        """The CA clients trust (``ssl_ca_location``)."""
        return self.tls.ca

    def _load(self) -> dict[str, str]:
        path = self.directory / _CREDENTIALS
        if not path.exists():
            return {}
        doc = orjson.loads(path.read_bytes())
        return {str(k): str(v) for k, v in doc.items()}

    def _save(self, creds: Mapping[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / _CREDENTIALS
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(dict(creds), option=orjson.OPT_SORT_KEYS))
        tmp.replace(path)

    def password(self, principal: str) -> str:
        """``principal``'s password, generated (and kept) on first use."""
        creds = self._load()
        if principal not in creds:
            creds[principal] = secrets.token_urlsafe(24)
            self._save(creds)
        return creds[principal]

    def known(self) -> frozenset[str]:
        """Principals that have a password here."""
        return frozenset(self._load())

    # -- node settings ----------------------------------------------------------------
    def listeners(self) -> ListenerSettings:
        """The node settings of the module docstring, for ``server_properties``."""
        tls = self.tls
        pw = self.password(ADMIN)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        return ListenerSettings(
            broker="BROKER",
            controller="CONTROLLER",
            protocols={"BROKER": "SASL_SSL", "CONTROLLER": "SASL_SSL"},
            extra={
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(tls.node),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(tls.ca),
                "ssl.client.auth": "none",
                "listener.name.broker.sasl.enabled.mechanisms": _MECHANISM,
                "listener.name.broker.scram-sha-512.sasl.jaas.config": _jaas(scram, ADMIN, pw),
                "sasl.mechanism.inter.broker.protocol": _MECHANISM,
                "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
                "listener.name.controller.plain.sasl.jaas.config": _jaas(
                    plain, ADMIN, pw, serves=True
                ),
                "sasl.mechanism.controller.protocol": "PLAIN",
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                "super.users": f"User:{ADMIN}",
            },
        )

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that put admin's SCRAM credential in the
        metadata before any node starts (inter-broker traffic authenticates with it)."""
        pw = self.password(ADMIN)
        return [
            f"--add-scram={_MECHANISM}=[name={ADMIN},iterations={SCRAM_ITERATIONS},password={pw}]"
        ]

    # -- clients ------------------------------------------------------------------------
    def connection(self, bootstrap: str, principal: str = ADMIN) -> KafkaConnection:
        """A client connection as ``principal`` (SASL_SSL, SCRAM-SHA-512, the CA)."""
        return KafkaConnection(
            bootstrap=bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=_MECHANISM,
            sasl_username=principal,
            sasl_password=SecretStr(self.password(principal)),
            ssl_ca_location=str(self.ca),
        )

    def grant(
        self, bootstrap: str, users: Mapping[str, tuple[Acl, ...]], *, timeout_s: float = 60.0
    ) -> None:
        """Give every principal of ``users`` its SCRAM credential and exactly its ACLs (as
        admin; idempotent), and wait until the brokers accept the credentials."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialAlteration,
            UserScramCredentialUpsertion,
        )

        client = admin(self.connection(bootstrap))
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(name, info, self.password(name).encode()) for name in users
        ]
        for name, fut in client.alter_user_scram_credentials(upserts).items():
            try:
                fut.result(timeout=timeout_s)
            except Exception as exc:
                raise BrokerError(f"SCRAM credential of {name} refused: {exc}") from None
        bindings: list[AclBinding] = [
            _binding(name, acl, op)
            for name, acls in users.items()
            for acl in acls
            for op in acl.operations
        ]
        if bindings:
            for binding, fut in client.create_acls(bindings, request_timeout=timeout_s).items():
                try:
                    fut.result(timeout=timeout_s)
                except Exception as exc:
                    raise BrokerError(f"ACL {binding} refused: {exc}") from None
        self._wait_accepted(bootstrap, list(users)[-1:], timeout_s)
        logger.info("granted principals=%d acls=%d", len(users), len(bindings))

    def _wait_accepted(self, bootstrap: str, names: list[str], timeout_s: float) -> None:
        """Credentials reach every broker through the metadata log: wait for the last one."""
        deadline = time.monotonic() + timeout_s
        for name in names:
            while True:
                try:
                    check_connection(self.connection(bootstrap, name), timeout_s=5.0)
                    break
                except KafkaUnreachable:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.2)  # the metadata log carries the credential within moments


def write_cluster_secrets(directory: Path, hosts: tuple[str, ...]) -> list[Path]:
    """The files of ``tuyen broker secrets`` (docker-compose's ``secrets/``): ``tls/ca.pem``
    and ``tls/node.pem`` (a CA and one certificate for every node, naming ``hosts`` and
    loopback), ``kafka/admin.properties`` (``password=…``, read by the brokers' file config
    provider) and ``kafka/<principal>`` (one password each, for ``deploy.principals``'
    deployed principals). Existing passwords are kept; files are 0600."""
    from deploy.broker.tls import LOOPBACK_NAMES
    from deploy.principals import principals

    tls = ensure_tls(directory / "tls", (*hosts, *LOOPBACK_NAMES))
    kafka = directory / "kafka"
    kafka.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = [tls.ca, tls.node]

    def keep(path: Path, text: str) -> None:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        written.append(path)

    keep(kafka / "admin.properties", f"password={secrets.token_urlsafe(24)}\n")
    for name in principals(record_topics="province"):
        keep(kafka / name, secrets.token_urlsafe(24) + "\n")
    return written


def _binding(user: str, acl: Acl, operation: str) -> AclBinding:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    resource = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "cluster": ResourceType.BROKER,
    }[acl.resource]
    name = "kafka-cluster" if acl.resource == "cluster" else acl.name
    pattern = (
        ResourcePatternType.PREFIXED if acl.pattern == "prefix" else ResourcePatternType.LITERAL
    )
    op = {
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Describe": AclOperation.DESCRIBE,
        "Create": AclOperation.CREATE,
        "Alter": AclOperation.ALTER,
        "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
        "AlterConfigs": AclOperation.ALTER_CONFIGS,
    }[operation]
    return AclBinding(resource, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)
