"""Frozen configuration of the producers package (never reads the environment).

Entry points (``tuyen publish``, ``tuyen simulate``, tests) build these from
``deploy.settings.Settings`` and command-line options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.kafka import KafkaConnection
from schemas.keys import DEV_KEY_SEED as _SHARED_DEV_KEY_SEED
from schemas.partition import PARTITIONER

# Seed of the development key registry (``schemas.DevKeyRegistry``) shared by the simulator,
# ``tuyen publish --dev-keys`` and the tests. Development only: anyone who knows it can sign.
DEV_KEY_SEED: Final = _SHARED_DEV_KEY_SEED
DEV_SIGNERS_PER_STATION: Final = 8


class ProducerConfig(BaseModel):
    """How a :class:`producers.sdk.StationClient` talks to Kafka and keeps its outbox.

    ``kafka``: the brokers and the station's credentials (a
    :class:`~schemas.kafka.KafkaConnection`: SASL/SCRAM over TLS in production).

    ``synchronous``: SQLite's ``synchronous`` pragma in WAL mode. ``FULL`` (default) fsyncs
    the WAL at every commit, so an event the client has accepted survives a power cut or an
    OS crash, not only a process crash; ``NORMAL`` survives ``kill -9`` but may lose the last
    transactions on power loss. Stations lose power often and the contract is "nothing lost",
    so ``FULL``; the cost (one fsync per commit) is amortised by writing in batches.

    ``message_timeout_ms``: how long librdkafka keeps retrying one message. When it gives
    up, the row is *not* removed: it goes back to pending and is produced again, so a broker
    outage of any length loses nothing (the outbox is the durable queue, not librdkafka).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kafka: KafkaConnection
    topic: str
    outbox_path: Path
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    message_timeout_ms: int = Field(default=120_000, ge=1_000)
    linger_ms: int = Field(default=20, ge=0)
    batch_size: int = Field(default=1_000_000, ge=1)
    compression: Literal["lz4", "zstd", "snappy", "gzip", "none"] = "lz4"
    max_in_flight: int = Field(default=200_000, ge=1, description="rows handed to librdkafka")
    read_batch: int = Field(default=10_000, ge=1, description="rows read per outbox query")
    socket_timeout_ms: int = Field(default=30_000, ge=10)
    reconnect_backoff_max_ms: int = Field(default=5_000, ge=10)
    extra: dict[str, str | int | bool] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _contract_partitioner(
        cls, extra: dict[str, str | int | bool]
    ) -> dict[str, str | int | bool]:
        if extra.get("partitioner", PARTITIONER) != PARTITIONER:
            raise ValueError(
                f"partitioner must stay {PARTITIONER} (murmur2, the contract's): with another "
                "one the stream worker dead-letters most events as wrong_partition"
            )
        return extra

    def producer_settings(self) -> dict[str, str | int | bool]:
        """The confluent-kafka producer's own settings (idempotent, acks=all); the connection
        settings come from ``kafka``."""
        cfg: dict[str, str | int | bool] = {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size,
            "message.timeout.ms": self.message_timeout_ms,
            "queue.buffering.max.messages": max(self.max_in_flight + 10_000, 100_000),
            "queue.buffering.max.kbytes": 1_048_576,
            "socket.timeout.ms": self.socket_timeout_ms,
            "reconnect.backoff.max.ms": self.reconnect_backoff_max_ms,
            # the contract's partitioner (murmur2, the Java client's default): a record's
            # changes land where the stream worker keeps its state
            "partitioner": PARTITIONER,
        }
        cfg.update(self.extra)
        return cfg


class SimulationConfig(BaseModel):
    """What ``producers.simulator.simulate`` generates. Rates are per person per year unless
    named otherwise; ``scale`` is the share of each commune's population simulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 1
    stations: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    n_stations: int | None = Field(default=None, ge=1)
    start: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    days: int = Field(default=30, ge=1, le=3660)
    scale: float = Field(default=0.05, gt=0, le=1.0)
    activity_scale: float = Field(default=1.0, ge=0, le=100.0)
    registration_share: float = Field(
        default=1.0, ge=0, le=1.0, description="share of the simulated people registered"
    )
    outpatient_rate: float = 1.2
    birth_rate: float = 0.016
    death_rate: float = 0.0063
    infant_mortality: float = 0.0125
    disease_rate: float = 0.004
    hypertension_share_40plus: float = 0.12
    diabetes_share_40plus: float = 0.04
    correction_rate: float = Field(default=0.02, ge=0, le=0.5)
    deletion_rate: float = Field(default=0.003, ge=0, le=0.5)
    offline_station_share: float = Field(default=0.1, ge=0, le=1)
    offline_days: tuple[int, int] = (2, 6)
    bad_fraction: float = Field(default=0.0, ge=0, le=0.5)
    signers_per_station: int = Field(default=4, ge=1, le=DEV_SIGNERS_PER_STATION)
    key_seed: bytes = DEV_KEY_SEED
    keep_truth: bool = True
    sign_threads: int = Field(default=2, ge=0, le=16)
    history: bool = Field(
        default=True,
        description="start with the stations' past: people registered years ago, infants "
        "half way through their schedule, pregnancies and chronic registers under way (the "
        "past records are back-entered in the first weeks)",
    )
    submissions: bool = Field(
        default=True, description="station heads submit each month that ends in the window"
    )
