"""Configuration of the sinks and the compaction job (frozen; never reads the environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas import topics as T
from schemas.kafka import KafkaConnection

__all__ = ["SINK_NAMES", "CompactConfig", "SinkConfig", "sink_config"]

SinkKind = Literal["tier", "aggregates", "dlq"]

#: sink name → (kind, tier, base topic)
_SINKS: dict[str, tuple[SinkKind, str | None, str]] = {
    "district": ("tier", "district", T.TIER_DISTRICT),
    "province": ("tier", "province", T.TIER_PROVINCE),
    "national": ("tier", "national", T.TIER_NATIONAL),
    "aggregates": ("aggregates", None, T.AGGREGATES),
    "dlq": ("dlq", None, T.DLQ),
}
SINK_NAMES: tuple[str, ...] = tuple(_SINKS)


class SinkConfig(BaseModel):
    """One sink consumer: what it reads, where it writes, how it batches and rotates files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SinkKind
    tier: str | None = None
    kafka: KafkaConnection
    topic: str
    group: str
    store_root: str
    batch_size: int = Field(default=10_000, ge=1, description="consume(num_messages=…)")
    poll_timeout_s: float = Field(default=0.5, gt=0)
    rotate_rows: int = Field(default=100_000, ge=1)
    rotate_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    max_segment_age_s: float = Field(default=300.0, gt=0)
    flush_interval_s: float = Field(default=2.0, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    consumer_overrides: dict[str, str] = Field(default_factory=dict)


def sink_config(
    name: str,
    *,
    kafka: KafkaConnection,
    store_root: str,
    prefix: str = "",
    topic: str | None = None,
    group: str | None = None,
    **options: object,
) -> SinkConfig:
    """The config of sink ``name`` (district, province, national, aggregates, dlq):
    topic ``<prefix><base topic>``, group ``<prefix>tuyen-sink-<name>`` unless given."""
    if name not in _SINKS:
        raise ValueError(f"unknown sink {name!r} (one of {', '.join(SINK_NAMES)})")
    kind, tier, base = _SINKS[name]
    return SinkConfig.model_validate(
        {
            "name": name,
            "kind": kind,
            "tier": tier,
            "kafka": kafka,
            "topic": topic or T.topic_name(base, prefix),
            "group": group or f"{prefix}tuyen-sink-{name}",
            "store_root": store_root,
            **options,
        }
    )


class CompactConfig(BaseModel):
    """The compaction job: which partitions are closed, and how long readers are given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_root: str
    before_month: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        description="compact months strictly before this one (default: the current month)",
    )
    min_file_age_s: float = Field(
        default=3600.0,
        ge=0,
        description="leave files younger than this alone (a sink may still be rewriting them)",
    )
    min_files: int = Field(default=2, ge=1, description="merge a directory with this many files")
    dlq_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="first remove dead letters older than this many days (sinks.purge)",
    )
