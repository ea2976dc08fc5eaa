"""Configuration of the stream layer: one frozen model, built by the entry point from settings.

Nothing here reads the environment; ``tuyen streams worker`` builds a :class:`StreamsConfig`
from ``deploy.settings.Settings`` and command-line options.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from schemas import MAX_CLOCK_SKEW, MAX_VALUE_BYTES
from schemas.kafka import KafkaConnection
from schemas.keys import DEV_KEY_SEED
from schemas.topics import DAY_MS, RecordTopics, TopicSpec
from streams.pseudonym_key import WeakPseudonymKey, decode_pseudonym_key

__all__ = ["APP_ID", "COUNTERS_TABLE", "RECORDS_TABLE", "StreamsConfig", "ValidationPolicy"]

#: The stream worker's faust app id: its consumer group (``<topic prefix>tuyen-streams``), the
#: prefix of its internal topics, its Kafka principal in the manifests.
APP_ID = "tuyen-streams"
#: The worker's two faust tables (their changelogs: ``<group>-<table>-changelog``)
RECORDS_TABLE = "records"
COUNTERS_TABLE = "counters"


class ValidationPolicy(BaseModel):
    """The limits the validator applies (pure data; see ``streams.validate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_value_bytes: int = Field(default=MAX_VALUE_BYTES, ge=1)
    max_clock_skew: timedelta = MAX_CLOCK_SKEW
    max_event_age: timedelta = Field(
        default=timedelta(days=730),
        description="events older than this (by ce_time vs processing time) are rejected",
    )
    dedupe_ids_per_record: int = Field(
        default=8, ge=1, le=64, description="event ids remembered per record (latest versions)"
    )
    max_version_step: int = Field(
        default=1000,
        ge=1,
        description="a record_version may exceed the last accepted one by at most this (a new "
        "record starts at most at this version): one event cannot push a record's version out "
        "of reach of every later correction",
    )


class StreamsConfig(BaseModel):
    """Everything ``build_app`` needs. Frozen; secrets are ``SecretStr`` and never logged.

    Fails closed: outside ``development`` a key registry file and a strong pseudonym key
    (:func:`~streams.pseudonym_key.decode_pseudonym_key`) are required; in development the
    development registry (``key_registry_seed``) and the development key are allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kafka: KafkaConnection = Field(description="the Kafka connection of every client")
    development: bool = Field(
        default=False, description="allow the development key registry and pseudonym key"
    )
    app_id: str = Field(default=APP_ID, description="faust app id = consumer group")
    topic_prefix: str = Field(default="", description="prefix of every topic and the group")
    partitions: int = Field(
        default=12, ge=1, description="partitions of the raw topic (tables are co-partitioned)"
    )
    record_topics: RecordTopics = Field(
        default="province",
        description="record-level outputs: a topic per province (province) or the "
        "development shape's tier.district and tier.province (single)",
    )
    publish_valid: bool = Field(
        default=False,
        description="also publish every accepted record to changes.valid (the same bytes as "
        "its record-level tier topic; nothing in the pipeline reads it): off, one message "
        "per event less",
    )
    aggregate_partitions: int = Field(
        default=6, ge=1, description="partitions of the internal aggregate-delta topic"
    )
    pseudonym_key: SecretStr = Field(
        description="HMAC key for national pseudonyms: base64 of at least 32 random bytes"
    )
    key_registry_seed: SecretStr = Field(
        default=SecretStr(DEV_KEY_SEED.decode()),
        description="seed of the development key registry (schemas.keys.DEV_KEY_SEED)",
    )
    key_registry_path: str | None = Field(
        default=None,
        description="a StaticKeyRegistry JSON file (required outside development mode)",
    )
    key_registry_reload_s: float = Field(
        default=10.0,
        gt=0,
        description="how often the key registry file is checked for changes (a revoked key "
        "stops working within this)",
    )
    facilities_path: str | None = Field(
        default=None,
        description="a facility registry CSV (schemas.facilities): facilities outside the "
        "station hierarchy accepted as sources",
    )
    signers_per_station: int = Field(default=8, ge=1)
    batch_size: int = Field(default=2000, ge=1, description="events per stream.take batch")
    batch_within_s: float = Field(default=0.25, gt=0, description="max wait to fill a batch")
    # stage 1 inline on the event loop, chunk by chunk: in make bench's paired rounds ~10 µs
    # less CPU per event than on a thread (whose GIL hand-offs with the loop cost more than
    # Ed25519 overlapping them gives back) at the same rate; one thread (1) suits a worker with
    # an idle core; a check process pays for pickling items and verdicts (docs/streams.md)
    verify_threads: int = Field(
        default=0,
        ge=0,
        description="threads checking a batch (when verify_processes is 0; 0: on the event loop)",
    )
    verify_processes: int = Field(
        default=0,
        ge=0,
        description="worker processes for the stateless checks (0: in the worker process)",
    )
    overlap_checkpoint: bool = Field(
        default=True,
        description="process the next batch (stages 1 and 2) while the batch before it is "
        "checkpointed (its flushes wait for the broker); its own checkpoint starts only once "
        "that one finished all four steps",
    )
    web_enabled: bool = Field(
        default=True, description="serve /aggregates/ and /stats/ (faust's own views stay off)"
    )
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    broker_session_timeout_s: float = Field(default=30.0, gt=0)
    broker_heartbeat_interval_s: float = Field(default=3.0, gt=0)
    stall_check_s: float = Field(default=5.0, gt=0, description="input-partition watchdog period")
    stall_after_s: float = Field(
        default=20.0, gt=0, description="resume a lagging partition silent for this long"
    )
    data_dir: str = Field(default="/tmp/tuyen-streams", description="faust's local directory")
    store: str = Field(default="memory://", description="faust table store URL")
    state_store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb",
        description="where the per-record state lives: on disk (RocksDB, one database per "
        "partition under data_dir; memory stays flat) or in memory (tests, small runs)",
    )
    rocksdb_cache_mib: int = Field(
        default=8, ge=1, description="RocksDB block cache per partition database (MiB)"
    )
    rocksdb_write_buffer_mib: int = Field(
        default=4, ge=1, description="RocksDB memtable size per partition database (MiB)"
    )
    policy: ValidationPolicy = ValidationPolicy()

    @model_validator(mode="after")
    def _trust_anchors(self) -> StreamsConfig:
        try:
            decode_pseudonym_key(
                self.pseudonym_key.get_secret_value(), allow_development=self.development
            )
        except WeakPseudonymKey as exc:
            raise ValueError(f"pseudonym key refused: {exc}") from None
        if not self.development and not self.key_registry_path:
            raise ValueError(
                "key_registry_path is required outside development mode (the development "
                "registry's seed is public)"
            )
        return self

    def pseudonym_key_bytes(self) -> bytes:
        """The decoded HMAC key (validated when the config was built)."""
        return decode_pseudonym_key(
            self.pseudonym_key.get_secret_value(), allow_development=self.development
        )

    def topic(self, base: str) -> str:
        """Full name of a topic declared in ``schemas.topics``."""
        from schemas.topics import topic_name

        return topic_name(base, self.topic_prefix)

    @property
    def group_id(self) -> str:
        return self.topic_prefix + self.app_id

    @property
    def deltas_topic(self) -> str:
        """Internal topic carrying aggregate deltas, partitioned by unit."""
        return f"{self.group_id}-aggregate-deltas"

    def internal_topic_specs(self) -> list[TopicSpec]:
        """:meth:`internal_topics` as topic declarations (deltas kept 7 days, changelogs
        compacted), for ``deploy.topics.apply_topics``."""
        return [
            TopicSpec(
                name, partitions, cleanup, retention_ms=-1 if cleanup == "compact" else 7 * DAY_MS
            )
            for name, partitions, cleanup in self.internal_topics()
        ]

    def internal_topics(self) -> list[tuple[str, int, str]]:
        """The worker's own topics (name, partitions, cleanup policy): the aggregate deltas
        and the two table changelogs (faust's ``<app id>-<table>-changelog``)."""
        return [
            (self.deltas_topic, self.aggregate_partitions, "delete"),
            (f"{self.group_id}-{RECORDS_TABLE}-changelog", self.partitions, "compact"),
            (f"{self.group_id}-{COUNTERS_TABLE}-changelog", self.aggregate_partitions, "compact"),
        ]
