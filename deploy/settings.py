"""Every environment variable tuyen reads, in one place.

Only entry points construct :class:`Settings`: the ``tuyen`` CLI builds it once in its root
callback and hands it to the command (test fixtures and benchmarks do the same); library code
receives the frozen values it needs as arguments (a :class:`~schemas.kafka.KafkaConnection`,
a ``StreamsConfig``, a path).

| variable | meaning | default |
|---|---|---|
| ``TUYEN_DEV`` | ``1``: development mode (also ``tuyen --dev``), see below | ``0`` |
| ``KAFKA_BOOTSTRAP`` | an existing cluster's bootstrap; when set nothing is started | unset |
| ``TUYEN_HOME`` | cache and state: Kafka jars, local broker data, outboxes | ``~/.cache/tuyen`` |
| ``TUYEN_BROKER_MODE`` | ``auto`` (external, Docker, local jars) or one of them | ``auto`` |
| ``TUYEN_TOPIC_PREFIX`` | prefix for every topic and consumer group name | ``""`` |
| ``TUYEN_TOPIC_PARTITIONS`` | override every topic's partition count (small clusters) | unset |
| ``TUYEN_STORE_ROOT`` | base of the owners' roots: a path or an ``s3://`` URL | ``./out/store`` |
| ``TUYEN_PROVINCE_ROOT`` | each province's root, with ``{code}`` | ``<base>/province-{code}`` |
| ``TUYEN_NATIONAL_ROOT`` | the national tier's and live counters' root | ``<base>/national`` |
| ``TUYEN_QUARANTINE_ROOT`` | the dead letters' root (operators only) | ``<base>/quarantine`` |
| ``TUYEN_RECORD_TOPICS`` | ``province`` (a topic each) or ``single`` (development) | ``province`` |
| ``TUYEN_PSEUDONYM_KEY`` | national pseudonyms' HMAC key, base64 of ≥ 32 random bytes (S) | (R) |
| ``TUYEN_ERASURE_KEY`` | the erasure register's key, derived from the pseudonym key (S) | (E) |
| ``TUYEN_DLQ_RETENTION_DAYS`` | days dead letters are kept (store and DLQ topic) | ``30`` |
| ``TUYEN_K_ANONYMITY`` | k of the national person release | ``5`` |
| ``TUYEN_SUPPRESSION_THRESHOLD`` | small cells: national reports hide counts below it | ``5`` |
| ``TUYEN_KEY_REGISTRY`` | the signers' public keys: a ``key_registry/v1`` JSON file | (R) |
| ``TUYEN_APPROVER_KEYS`` | path of the approvers' public keys (``schemas.signoff`` JSON) | (A) |
| ``TUYEN_ACCESS_LOG`` | where data requests (reports, summaries) go | ``<root>/_access.log`` |
| ``TUYEN_ACCESS_LOG_KEY`` | HMAC key of the access logs' hash chain, ≥ 32 random bytes (S) | (P) |
| ``TUYEN_FACILITIES`` | facility registry CSV (MA_CSKCB → source), read by the worker (F) | unset |
| ``TUYEN_PORTAL_STATE_DIR`` | portal accounts, sessions, its access log | ``<home>/portal`` |
| ``TUYEN_PORTAL_HOST`` | where ``tuyen portal serve`` listens | ``127.0.0.1`` |
| ``TUYEN_PORTAL_PORT`` | its port | ``8780`` |
| ``TUYEN_PORTAL_SESSION_KEY`` | signs the portal's session cookies, ≥ 32 random bytes (S) | (P) |
| ``TUYEN_PORTAL_SECURE_COOKIES`` | ``Secure`` cookies (behind TLS); off in dev mode | ``true`` |
| ``TUYEN_MONITOR_PORT`` | port of ``tuyen monitor serve`` | ``9308`` |
| ``TUYEN_MONITOR_TOKEN`` | the monitor's bearer token (S), needed off loopback | unset |
| ``TUYEN_LOG_LEVEL`` | logging level | ``WARNING`` |
| ``TUYEN_KAFKA_SECURITY_PROTOCOL`` | ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL`` | ``PLAINTEXT`` |
| ``TUYEN_KAFKA_SASL_MECHANISM`` | ``SCRAM-SHA-512``, ``SCRAM-SHA-256`` or ``PLAIN`` | unset |
| ``TUYEN_KAFKA_SASL_USERNAME`` | SASL user (this service's or station's principal) | unset |
| ``TUYEN_KAFKA_SASL_PASSWORD`` | SASL password (S) | unset |
| ``TUYEN_KAFKA_SSL_CA_LOCATION`` | CA bundle (PEM) that signed the brokers' certificates | system |
| ``TUYEN_KAFKA_SSL_CERTIFICATE_LOCATION`` | client certificate (PEM) for mutual TLS | unset |
| ``TUYEN_KAFKA_SSL_KEY_LOCATION`` | its private key (PEM) | unset |
| ``TUYEN_KAFKA_SSL_KEY_PASSWORD`` | the private key's password (S) | unset |

(S) a secret: ``SecretStr``, never logged, and readable from a file instead, as Docker and
Kubernetes secret mounts provide them: ``TUYEN_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym_key``
(surrounding whitespace and the final newline are removed). Setting both ``X`` and ``X_FILE``
is an error. No secret has a default outside development mode.

(R) required by the stream worker; in development mode, when unset, the development registry
and the development pseudonym key are used and a WARNING says so (``deploy.anchors``).

(E) required by the writers of record rows: ``tuyen sink`` district, province, dlq and signoff
(and any sink given ``--root``) and ``tuyen compact``; they never read the pseudonym key. It
is derived from the pseudonym key once by the operator: ``tuyen keys erasure-key``
(``deploy.anchors.derive_erasure_key``); ``tuyen purge`` refuses one that does not match. In
development mode, when unset, it is derived from the pseudonym key the process has (the
development one when that is unset) and a WARNING says so. A sink holds no other secret
(:data:`SINK_SECRET_FIELDS`).

(A) required by whatever checks monthly sign-off decisions: the ``signoff`` sink, ``tuyen
report approve|send-back|lock`` and ``tuyen portal serve``; in development mode the development
approvers (``sup-<unit>-<n>``) are accepted besides it, and alone when it is unset.

(P) required by ``tuyen portal serve``; in development mode, when unset, keys generated once
into the portal's state dir are used and a WARNING says so (``deploy.anchors``).

(F) the facilities outside the station hierarchy (hospitals, clinics) that may publish, with
the source code each one signs as (``schemas.facilities``, docs/interop.md). Unset: only the
commune stations. When set, the worker refuses to start if the file cannot be read or is not
a valid registry; ``tuyen import`` (``--facilities`` overrides), ``tuyen summary`` and the
portal (its hospitals' clinicians) read the same file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from deploy.exceptions import ConfigError
from schemas.kafka import KafkaConnection, SaslMechanism, SecurityProtocol
from schemas.topics import RecordTopics
from sinks.roots import CODE, StoreRoots

__all__ = [
    "SECRET_FIELDS",
    "SINK_SECRET_FIELDS",
    "WORKER_SECRET_FIELDS",
    "Settings",
    "env_name",
    "kafka_env",
    "secret_file_text",
]

#: Settings that are secrets: ``SecretStr``, never logged, readable from ``<VAR>_FILE``.
SECRET_FIELDS: Final = (
    "pseudonym_key",
    "erasure_key",
    "access_log_key",
    "portal_session_key",
    "monitor_token",
    "kafka_sasl_password",
    "kafka_ssl_key_password",
)

#: The only secrets a sink process may hold (its Kafka credentials, the erasure key): every
#: other secret of :data:`SECRET_FIELDS`, in either form (``X`` and ``X_FILE``), is taken out
#: of a sink's environment (``deploy.pipeline.Pipeline.sink_env``; the manifests mount no more).
SINK_SECRET_FIELDS: Final = ("erasure_key", "kafka_sasl_password", "kafka_ssl_key_password")
#: The secrets of :data:`SECRET_FIELDS` a stream worker may hold: its Kafka credentials and
#: the pseudonym key; every other one, in either form, is taken out of a worker's environment
#: (``deploy.pipeline.Pipeline.worker_env``), as :data:`SINK_SECRET_FIELDS` for a sink.
WORKER_SECRET_FIELDS: Final = ("pseudonym_key", "kafka_sasl_password", "kafka_ssl_key_password")

_ENV_PREFIX: Final = "TUYEN_"


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``kafka_bootstrap`` is
    ``KAFKA_BOOTSTRAP``; every other field is ``TUYEN_<FIELD>``)."""
    return "KAFKA_BOOTSTRAP" if field == "kafka_bootstrap" else _ENV_PREFIX + field.upper()


def _default_home() -> Path:
    return Path.home() / ".cache" / "tuyen"


class _SecretFiles(PydanticBaseSettingsSource):
    """``<VAR>_FILE``: a secret's value read from a file (Docker/Kubernetes secret mounts)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            var = env_name(name)
            if os.environ.get(var + "_FILE") and os.environ.get(var):
                raise ConfigError(f"both {var} and {var}_FILE are set: set only one of them")
            text = secret_file_text(os.environ, var)
            if text is not None:
                values[name] = text
        return values


def secret_file_text(env: Mapping[str, str], var: str) -> str | None:
    """The secret ``var`` given as a file in ``env`` (``<var>_FILE``): its text without the
    surrounding whitespace; None when unset. A file that cannot be read or is empty: a
    :class:`ConfigError` naming it."""
    path = env.get(var + "_FILE")
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{var}_FILE={path} cannot be read: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"{var}_FILE={path} is empty")
    return text


#: The fields of a KafkaConnection read from ``TUYEN_KAFKA_<FIELD>`` (bootstrap has its own).
_CONNECTION_FIELDS: Final = tuple(n for n in KafkaConnection.model_fields if n != "bootstrap")


class Settings(BaseSettings):
    """Frozen settings read from the environment at an entry point."""

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, frozen=True, extra="ignore")

    dev: bool = False
    kafka_bootstrap: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "TUYEN_KAFKA_BOOTSTRAP")
    )
    home: Path = Field(default_factory=_default_home)
    broker_mode: Literal["auto", "external", "container", "local"] = "auto"
    topic_prefix: str = ""
    topic_partitions: int | None = Field(default=None, ge=1, le=1000)
    store_root: str = "out/store"
    province_root: str | None = None
    national_root: str | None = None
    quarantine_root: str | None = None
    record_topics: RecordTopics = "province"
    pseudonym_key: SecretStr | None = None
    erasure_key: SecretStr | None = None
    dlq_retention_days: int = Field(default=30, ge=1, le=3650)
    k_anonymity: int = Field(default=5, ge=2, le=1000)
    suppression_threshold: int = Field(default=5, ge=1, le=1000)
    access_log: str | None = None
    access_log_key: SecretStr | None = None
    portal_state_dir: Path | None = None
    portal_host: str = "127.0.0.1"
    portal_port: int = Field(default=8780, ge=1, le=65535)
    portal_session_key: SecretStr | None = None
    portal_secure_cookies: bool = True
    key_registry: str | None = None
    approver_keys: str | None = None
    facilities: str | None = None
    monitor_port: int = Field(default=9308, ge=1, le=65535)
    monitor_token: SecretStr | None = None
    log_level: str = "WARNING"
    # one per field of schemas.kafka.KafkaConnection (bootstrap apart), prefixed kafka_
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``<VAR>_FILE`` secrets, then the environment (no dotenv)."""
        return init_settings, _SecretFiles(settings_cls), env_settings

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment; a bad value raises :class:`ConfigError` naming the variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"{env_name(str(e['loc'][0])) if e['loc'] else '?'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"bad setting: {problems}") from None

    def access_log_path(self, store_root: str | None = None) -> Path:
        """Where data requests on the stores under ``store_root`` (default
        ``TUYEN_STORE_ROOT``) are logged: ``TUYEN_ACCESS_LOG`` when set, else
        ``<root>/_access.log`` for a local root, ``<TUYEN_HOME>/access.log`` for an object
        store (the log stays local). Every command that reads the stores uses this."""
        if self.access_log:
            return Path(self.access_log)
        root = store_root or self.store_root
        if "://" in root and not root.startswith("file://"):
            return self.home / "access.log"
        return Path(root.removeprefix("file://")) / "_access.log"

    def store_roots(self, base: str | None = None) -> StoreRoots:
        """Every owner's store root: under ``base`` (default ``TUYEN_STORE_ROOT``), each
        overridable (``TUYEN_PROVINCE_ROOT`` with ``{code}``, ``TUYEN_NATIONAL_ROOT``,
        ``TUYEN_QUARANTINE_ROOT``)."""
        if self.province_root is not None and CODE not in self.province_root:
            raise ConfigError(
                f"TUYEN_PROVINCE_ROOT={self.province_root} has no {CODE}: each province "
                "needs its own root"
            )
        return StoreRoots.under(
            base or self.store_root,
            province=self.province_root,
            national=self.national_root,
            quarantine=self.quarantine_root,
        )

    def kafka_connection(self, bootstrap: str | None = None) -> KafkaConnection:
        """The one Kafka connection of this process: ``bootstrap`` (default
        ``KAFKA_BOOTSTRAP``) with the ``TUYEN_KAFKA_*`` security settings."""
        target = bootstrap or self.kafka_bootstrap
        if not target:
            raise ConfigError("no Kafka bootstrap: set KAFKA_BOOTSTRAP")
        fields = {name: getattr(self, "kafka_" + name) for name in _CONNECTION_FIELDS}
        try:
            return KafkaConnection(bootstrap=target, **fields)
        except ValidationError as exc:
            text = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            for name in sorted(fields, key=len, reverse=True):
                text = text.replace(name, env_name("kafka_" + name))
            raise ConfigError(f"bad Kafka connection settings: {text}") from None


def kafka_env(kafka: KafkaConnection, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process reads ``kafka`` back from (the inverse of
    :meth:`Settings.kafka_connection`; secrets included, for the child's environment only):
    ``base`` (default: none) without its own Kafka settings, plus the connection's."""
    env = {
        k: v
        for k, v in (base or {}).items()
        if k != "KAFKA_BOOTSTRAP" and not k.startswith("TUYEN_KAFKA_")
    }
    env["KAFKA_BOOTSTRAP"] = kafka.bootstrap
    for name in _CONNECTION_FIELDS:
        value = getattr(kafka, name)
        if value is not None:
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            env[env_name("kafka_" + name)] = text
    return env
