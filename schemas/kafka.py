"""How tuyen reaches Kafka: one frozen :class:`KafkaConnection`, and the only place Kafka
clients are built.

Entry points build the connection once (``deploy.settings.Settings.kafka_connection()``;
station software builds it directly) and pass it down; every confluent-kafka producer,
consumer and admin client of the project comes from :func:`producer`, :func:`consumer` or
:func:`admin` here, and the faust app gets :func:`faust_credentials`. A unit test checks that
no other module constructs a client, so the security settings cannot be forgotten anywhere.

    kafka = KafkaConnection(
        bootstrap="kafka-1:9094,kafka-2:9094",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="station-00004",
        sasl_password=SecretStr(password),
        ssl_ca_location="/etc/tuyen/ca.crt",
    )
    p = producer(kafka, {"enable.idempotence": True})

Every producer partitions keys with the contract's murmur2 (``schemas.partition``) unless told
otherwise, so a record's changes land where the stream worker keeps its state.

Secrets are ``SecretStr``: ``repr``/``str`` of the connection never show them, and they are
revealed only in the dictionaries handed to the client libraries.

No Kafka library is imported at module load: the contract and the station SDK import this
module without pulling faust in (confluent-kafka is imported when a client is built).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from schemas.exceptions import TuyenError
from schemas.partition import PARTITIONER

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

__all__ = [
    "ClientConfig",
    "KafkaConnection",
    "KafkaUnreachable",
    "admin",
    "check_connection",
    "client_config",
    "consumer",
    "faust_broker_urls",
    "faust_credentials",
    "producer",
    "producer_config",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: The connection's fields that become librdkafka properties when set (``sasl_username`` →
#: ``sasl.username``).
_OPTIONAL_PROPERTIES: Final = (
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_ca_location",
    "ssl_certificate_location",
    "ssl_key_location",
    "ssl_key_password",
)
#: librdkafka properties a caller may not set through ``overrides``: they belong to the
#: connection (so a stray override cannot downgrade security or point elsewhere).
_CONNECTION_KEYS = frozenset(
    {
        "bootstrap.servers",
        "metadata.broker.list",
        "security.protocol",
        "sasl.mechanisms",
        *(name.replace("_", ".") for name in _OPTIONAL_PROPERTIES),
    }
)

ClientConfig = Mapping[str, Any]


class KafkaUnreachable(TuyenError):
    """The brokers could not be reached, or refused the connection's credentials; the message
    says where, as whom, and librdkafka's reason."""


class KafkaConnection(BaseModel):
    """Where the brokers are and how to authenticate to them. Frozen; secrets never shown.

    - ``security_protocol``: ``PLAINTEXT`` (development, private networks only), ``SSL``
      (TLS; with ``ssl_certificate_location``/``ssl_key_location`` for mutual TLS),
      ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL user and password, over TLS for the latter).
    - ``ssl_ca_location``: the CA bundle (PEM) that signed the brokers' certificates; unset
      means the system's trust store.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap: str = Field(min_length=1, description="host:port[,host:port...]")
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KafkaConnection:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        given = [
            n
            for n in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, n) is not None
        ]
        if sasl:
            missing = sorted(
                {"sasl_mechanism", "sasl_username", "sasl_password"} - set(given),
            )
            if missing:
                raise ValueError(
                    f"security protocol {self.security_protocol} needs {', '.join(missing)}"
                )
        elif given:
            raise ValueError(
                f"{', '.join(given)} given but the security protocol is "
                f"{self.security_protocol} (SASL_SSL or SASL_PLAINTEXT use them)"
            )
        tls_files = [
            n
            for n in (
                "ssl_ca_location",
                "ssl_certificate_location",
                "ssl_key_location",
                "ssl_key_password",
            )
            if getattr(self, n) is not None
        ]
        if tls_files and not tls:
            raise ValueError(
                f"{', '.join(tls_files)} given but the security protocol is "
                f"{self.security_protocol} (SSL or SASL_SSL use them)"
            )
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError("a client certificate needs both ssl_certificate_location and key")
        return self

    def with_bootstrap(self, bootstrap: str) -> KafkaConnection:
        """The same credentials towards other brokers (e.g. a provisioned local broker)."""
        return self.model_copy(update={"bootstrap": bootstrap})

    @property
    def secured(self) -> bool:
        """True when the connection authenticates or encrypts (not ``PLAINTEXT``)."""
        return self.security_protocol != "PLAINTEXT"

    def librdkafka(self) -> dict[str, str]:
        """The connection as librdkafka (confluent-kafka) properties, secrets revealed."""
        cfg = {"bootstrap.servers": self.bootstrap}
        if self.security_protocol != "PLAINTEXT":
            cfg["security.protocol"] = self.security_protocol
        for name in _OPTIONAL_PROPERTIES:  # sasl_username → sasl.username, …
            value = getattr(self, name)
            if value is not None:
                secret = isinstance(value, SecretStr)
                cfg[name.replace("_", ".")] = value.get_secret_value() if secret else value
        return cfg

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (CA, optional client certificate); ``None`` without TLS."""
        if not self.security_protocol.endswith("SSL"):
            return None
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ssl_ca_location)
            if self.ssl_certificate_location is not None and self.ssl_key_location is not None:
                ctx.load_cert_chain(
                    self.ssl_certificate_location,
                    self.ssl_key_location,
                    password=(
                        self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
                    ),
                )
        except (OSError, ssl.SSLError) as exc:
            raise KafkaUnreachable(f"the connection's TLS files cannot be used: {exc}") from None
        return ctx


def client_config(kafka: KafkaConnection, overrides: ClientConfig | None = None) -> dict[str, Any]:
    """The connection's librdkafka properties plus a client's own ``overrides`` (which may
    not touch the connection's keys: bootstrap, protocol, SASL, TLS)."""
    extra = dict(overrides or {})
    clash = sorted(_CONNECTION_KEYS & set(extra))
    if clash:
        raise ValueError(f"{', '.join(clash)} belong to the KafkaConnection, not to a client")
    return {**kafka.librdkafka(), **extra}


def producer_config(
    kafka: KafkaConnection, overrides: ClientConfig | None = None
) -> dict[str, Any]:
    """:func:`client_config` of a producer: keys are partitioned with the contract's murmur2
    (``schemas.partition.PARTITIONER``) unless ``overrides`` name another ``partitioner``
    (librdkafka's own default, CRC32, puts most record keys on a partition where the stream
    worker does not keep their state: it dead-letters them ``wrong_partition``)."""
    return client_config(kafka, {"partitioner": PARTITIONER, **(overrides or {})})


def producer(kafka: KafkaConnection, overrides: ClientConfig | None = None) -> Producer:
    """A confluent-kafka ``Producer`` on ``kafka`` with the client settings ``overrides``
    (murmur2 partitioner unless they say otherwise: :func:`producer_config`)."""
    from confluent_kafka import Producer

    return Producer(producer_config(kafka, overrides))


def consumer(kafka: KafkaConnection, overrides: ClientConfig | None = None) -> Consumer:
    """A confluent-kafka ``Consumer`` on ``kafka`` (``overrides`` must name a ``group.id``)."""
    from confluent_kafka import Consumer

    return Consumer(client_config(kafka, overrides))


def admin(kafka: KafkaConnection, overrides: ClientConfig | None = None) -> AdminClient:
    """A confluent-kafka ``AdminClient`` on ``kafka``."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(client_config(kafka, overrides))


def faust_credentials(kafka: KafkaConnection) -> Any:
    """The connection as faust's ``broker_credentials`` (aiokafka underneath): ``None`` for
    PLAINTEXT, ``SSLCredentials`` for TLS, ``SASLCredentials`` (with the TLS context for
    ``SASL_SSL``) for SASL. Imports faust, so only the stream worker calls it."""
    from faust.auth import SASLCredentials, SSLCredentials

    context = kafka.ssl_context()
    if kafka.security_protocol == "PLAINTEXT":
        return None
    if kafka.security_protocol == "SSL":
        return SSLCredentials(context)
    assert kafka.sasl_password is not None  # checked by the model
    return SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )


def faust_broker_urls(kafka: KafkaConnection) -> list[str]:
    """faust's ``broker`` setting: one ``kafka://host:port`` URL per bootstrap server."""
    return [f"kafka://{b.strip()}" for b in kafka.bootstrap.split(",") if b.strip()]


def check_connection(kafka: KafkaConnection, timeout_s: float = 10.0) -> None:
    """Fetch the cluster's metadata once; :class:`KafkaUnreachable` with the reason when that
    fails (refused credentials at once, other failures at ``timeout_s``)."""
    errors: list[Any] = []
    try:
        probe = producer(kafka, {"error_cb": errors.append, "logger": _Quiet()})
    except Exception as exc:  # KafkaException: e.g. a TLS file librdkafka cannot load
        raise KafkaUnreachable(f"no Kafka client for {kafka.bootstrap}: {exc}") from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            return
        except Exception:  # KafkaException: the reason comes through error_cb
            probe.poll(0)
        refused = [e for e in errors if e.name() == "_AUTHENTICATION"]
        if refused or time.monotonic() >= deadline:
            break
    reasons = refused or [e for e in errors if e.name() != "_ALL_BROKERS_DOWN"] or errors
    reason = reasons[0].str() if reasons else "no broker answered"
    who = f" as {kafka.sasl_username!r}" if kafka.sasl_username else ""
    how = kafka.security_protocol + (f" {kafka.sasl_mechanism}" if kafka.sasl_mechanism else "")
    verdict = "refused the credentials" if refused else "did not answer"
    raise KafkaUnreachable(f"Kafka at {kafka.bootstrap}{who} ({how}) {verdict}: {reason}")


class _Quiet:
    """A librdkafka logger that drops its lines (the reason is reported once, above)."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None
