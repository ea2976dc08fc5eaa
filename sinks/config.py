"""Configuration of the sinks and the compaction job (frozen; never reads the environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import topics as T
from schemas.kafka import KafkaConnection

__all__ = [
    "ERASURE_WRITERS",
    "FLUSH_INTERVAL_S",
    "FRESH_FLUSH_S",
    "RECORD_SINKS",
    "SINK_NAMES",
    "CompactConfig",
    "SinkConfig",
    "SinkKind",
    "sink_config",
    "sink_group",
]

SinkKind = Literal["tier", "aggregates", "dlq", "signoff"]

#: sink name → (kind, tier, base topic)
_SINKS: dict[str, tuple[SinkKind, str | None, str]] = {
    "district": ("tier", "district", T.TIER_DISTRICT),
    "province": ("tier", "province", T.TIER_PROVINCE),
    "national": ("tier", "national", T.TIER_NATIONAL),
    "aggregates": ("aggregates", None, T.AGGREGATES),
    "dlq": ("dlq", None, T.DLQ),
    "signoff": ("signoff", None, T.SIGNOFF),
}
SINK_NAMES: tuple[str, ...] = tuple(_SINKS)
#: The record-level sinks: one per province in the per-province shape (``--province``).
RECORD_SINKS: tuple[str, ...] = ("district", "province")
#: The sinks whose roots' erasure registers name persons by keyed hash (sinks.erasure): the
#: record-level ones and those writing the quarantine (the DLQ; signoff's own dead rows). They
#: need the erasure key (TUYEN_ERASURE_KEY). The national and aggregates sinks write the
#: national root, whose register holds pseudonyms.
ERASURE_WRITERS: tuple[str, ...] = (*RECORD_SINKS, "dlq", "signoff")


#: How long a row may wait in a sink before a flush makes it readable (seconds), by kind of
#: sink, unless ``flush_interval_s`` is given (sinks.segments.SegmentWriter.flush_due): the record
#: tiers and the small DLQ and sign-off topics at 2 s (1 s or 0.5 s are fresher, at +9 to
#: +30 % CPU per event in bulk: docs/scale.md §5 "Freshness, hop by hop"); the aggregates
#: sink, whose live counters touch the most directories per flush (~3/4 of the sinks' files
#: at 2 s), at 10 s.
FLUSH_INTERVAL_S: dict[SinkKind, float] = {
    "tier": 2.0,
    "aggregates": 10.0,
    "dlq": 2.0,
    "signoff": 2.0,
}


#: Sooner for a trickle (seconds), by kind of sink, unless ``fresh_flush_s`` is given
#: (sinks.segments.SegmentWriter.fresh_flush_s): a partition's new rows are flushed once the
#: oldest has waited this long while fewer than ``fresh_flush_rows`` wait — at a steady
#: 1,000 events/s the worker's transactions bring a few dozen rows per partition, a backlog or
#: a burst hundreds (its full batches), which keep the interval above. Off by default: on the
#: idle machine, paired with the 2 s interval alone, 0.25 s for the record tiers gave p95
#: freshness 3.12 against 3.36 s at +25 % CPU per event and +41 % files written at the
#: steady rate (docs/scale.md §5 "Freshness, hop by hop"); ``tuyen sink --fresh-flush 0.25``.
FRESH_FLUSH_S: dict[SinkKind, float | None] = {
    "tier": None,
    "aggregates": None,
    "dlq": None,
    "signoff": None,
}


def sink_group(name: str, prefix: str = "", province: str | None = None) -> str:
    """The consumer group of sink ``name`` (``tuyen-sink-<name>``; one province's record-level
    sink: ``tuyen-sink-<name>-<code>``)."""
    return f"{prefix}tuyen-sink-{name}" + (f"-{province}" if province else "")


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
    province: str | None = Field(
        default=None, description="one province's record-level sink (its topic and root)"
    )
    province_roots: str | None = Field(
        default=None,
        description="route record-level rows to each province's root (a template with {code}; "
        "the single-topic shape); store_root then keeps only the sink's own dead rows",
    )
    batch_size: int = Field(default=10_000, ge=1, description="consume(num_messages=…)")
    poll_timeout_s: float = Field(
        default=0.1,
        gt=0,
        description="longest wait of one consume() for a batch to fill (never past the next "
        "flush due: SegmentWriter.due_in)",
    )
    rotate_rows: int = Field(default=100_000, ge=1)
    rotate_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    max_segment_age_s: float = Field(default=300.0, gt=0)
    flush_interval_s: float | None = Field(
        default=None,
        ge=0,
        description="flush the open segment's new rows once the oldest has waited this long "
        "(seconds; None: the kind's FLUSH_INTERVAL_S)",
    )
    fresh_flush_s: float | None = Field(
        default=None,
        ge=0,
        description="flush sooner, once the oldest new row has waited this long, while fewer "
        "than fresh_flush_rows wait (seconds; 0: never sooner; None: the kind's FRESH_FLUSH_S, "
        "unless flush_interval_s is given)",
    )
    fresh_flush_rows: int = Field(
        default=128, ge=1, description="rows waiting in a partition above which it is not a trickle"
    )
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    consumer_overrides: dict[str, str] = Field(default_factory=dict)
    approver_keys: str | None = Field(
        default=None,
        description="signoff sink: the approvers' keys (schemas.signoff registry JSON file); "
        "required outside development mode",
    )
    development: bool = Field(
        default=False, description="signoff sink: accept the development approvers' keys too"
    )

    @property
    def flush_after_s(self) -> float:
        """``flush_interval_s``, or the kind's default (FLUSH_INTERVAL_S)."""
        if self.flush_interval_s is not None:
            return self.flush_interval_s
        return FLUSH_INTERVAL_S[self.kind]

    @property
    def fresh_after_s(self) -> float | None:
        """``fresh_flush_s`` (0: None); else, with an explicit ``flush_interval_s``, None (that
        interval is the operator's choice); else the kind's default (FRESH_FLUSH_S)."""
        if self.fresh_flush_s is not None:
            return self.fresh_flush_s or None
        if self.flush_interval_s is not None:
            return None
        return FRESH_FLUSH_S[self.kind]

    @model_validator(mode="after")
    def _trust_anchor(self) -> SinkConfig:
        if self.kind == "signoff" and not self.approver_keys and not self.development:
            raise ValueError(
                "approver_keys is required by the signoff sink outside development mode (the "
                "development approvers' seed is public)"
            )
        return self


def sink_config(
    name: str,
    *,
    kafka: KafkaConnection,
    store_root: str,
    prefix: str = "",
    topic: str | None = None,
    group: str | None = None,
    province: str | None = None,
    **options: object,
) -> SinkConfig:
    """The config of sink ``name`` (district, province, national, aggregates, dlq,
    signoff): topic ``<prefix><base topic>``, group ``<prefix>tuyen-sink-<name>`` unless
    given. With ``province`` (district and province only): that province's topic
    ``tier.province.<code>`` and group ``tuyen-sink-<name>-<code>``."""
    if name not in _SINKS:
        raise ValueError(f"unknown sink {name!r} (one of {', '.join(SINK_NAMES)})")
    if province is not None and name not in RECORD_SINKS:
        raise ValueError(f"sink {name!r} is not per province (only {', '.join(RECORD_SINKS)})")
    kind, tier, base = _SINKS[name]
    default_topic = T.province_topic(province, prefix) if province else T.topic_name(base, prefix)
    return SinkConfig.model_validate(
        {
            "name": name,
            "kind": kind,
            "tier": tier,
            "kafka": kafka,
            "topic": topic or default_topic,
            "group": group or sink_group(name, prefix, province),
            "store_root": store_root,
            "province": province,
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
