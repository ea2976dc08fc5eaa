"""Every environment variable tuyen reads, in one place.

Only entry points (the ``tuyen`` CLI, the demo, test fixtures) construct :class:`Settings`;
library code receives the frozen values it needs as arguments.

| variable | meaning | default |
|---|---|---|
| ``KAFKA_BOOTSTRAP`` | an existing cluster's bootstrap; when set nothing is started | unset |
| ``TUYEN_HOME`` | cache and state: Kafka jars, local broker data, outboxes | ``~/.cache/tuyen`` |
| ``TUYEN_BROKER_MODE`` | ``auto`` (external, Docker, local jars) or one of them | ``auto`` |
| ``TUYEN_TOPIC_PREFIX`` | prefix for every topic and consumer group name | ``""`` |
| ``TUYEN_TOPIC_PARTITIONS`` | override every topic's partition count (small dev clusters) | unset |
| ``TUYEN_STORE_ROOT`` | root of the tier stores: a path or an ``s3://`` URL | ``./out/store`` |
| ``TUYEN_PSEUDONYM_KEY`` | HMAC key for national pseudonyms (secret, never logged) | dev-only key |
| ``TUYEN_ACCESS_LOG`` | where report calls are appended | ``<store root>/_access.log`` |
| ``TUYEN_KEY_REGISTRY`` | signers' public keys (StaticKeyRegistry JSON); unset: dev keys | unset |
| ``TUYEN_APPROVER_KEYS`` | approvers' public keys (schemas.signoff JSON); unset: dev keys | unset |
| ``TUYEN_MONITOR_PORT`` | port of ``tuyen monitor serve`` | ``9308`` |
| ``TUYEN_LOG_LEVEL`` | logging level | ``WARNING`` |
| ``TUYEN_KAFKA_SECURITY_PROTOCOL`` | ``PLAINTEXT``, ``SSL``, ``SASL_SSL`` … | ``PLAINTEXT`` |
| ``TUYEN_KAFKA_SASL_MECHANISM`` | e.g. ``SCRAM-SHA-512`` | unset |
| ``TUYEN_KAFKA_SASL_USERNAME`` | SASL user | unset |
| ``TUYEN_KAFKA_SASL_PASSWORD`` | SASL password (secret, never logged) | unset |
| ``TUYEN_KAFKA_SSL_CA_LOCATION`` | CA bundle for TLS listeners | unset |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_KEY = "tuyen-development-only-pseudonym-key"


def _default_home() -> Path:
    return Path.home() / ".cache" / "tuyen"


class Settings(BaseSettings):
    """Frozen settings read from the environment at an entry point."""

    model_config = SettingsConfigDict(env_prefix="TUYEN_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "TUYEN_KAFKA_BOOTSTRAP")
    )
    home: Path = Field(default_factory=_default_home)
    broker_mode: str = Field(default="auto", pattern="^(auto|external|container|local)$")
    topic_prefix: str = ""
    topic_partitions: int | None = Field(default=None, ge=1, le=1000)
    store_root: str = "out/store"
    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)
    access_log: str | None = None
    key_registry: str | None = None
    approver_keys: str | None = None
    monitor_port: int = Field(default=9308, ge=1, le=65535)
    log_level: str = "WARNING"
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$"
    )
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None

    def kafka_security(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) security properties; empty for PLAINTEXT."""
        cfg: dict[str, str] = {}
        if self.kafka_security_protocol != "PLAINTEXT":
            cfg["security.protocol"] = self.kafka_security_protocol
        if self.kafka_sasl_mechanism:
            cfg["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            cfg["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            cfg["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            cfg["ssl.ca.location"] = self.kafka_ssl_ca_location
        return cfg
