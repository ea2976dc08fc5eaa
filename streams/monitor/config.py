"""Settings of the lag monitor (frozen; built by the CLI from `deploy.settings` and options)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.kafka import KafkaConnection
from streams.monitor.burrow import DEFAULT_WINDOW

__all__ = ["MonitorConfig"]


class MonitorConfig(BaseModel):
    """What to watch and how. Never reads the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka: KafkaConnection
    topic_prefix: str = ""
    groups: tuple[str, ...] = ()  # exact group names; empty = every group
    group_prefix: str = ""  # only groups whose name starts with this
    window: int = Field(default=DEFAULT_WINDOW, ge=1, le=1000)
    allowed_lag: int = Field(default=0, ge=0)  # Burrow's allowed-lag
    min_complete: float = Field(default=0.0, ge=0.0, le=1.0)  # Burrow's minimum-complete
    # end offsets kept per partition for "recently caught up": one per interval (Burrow's
    # offset-refresh), ``window`` of them; seeded from message timestamps on first sight
    offset_refresh_s: float = Field(default=10.0, gt=0)
    broker_metrics: tuple[str, ...] = ()  # the brokers' JMX exporter /metrics URLs
    cluster_name: str = "tuyen"  # the cluster's name in the Burrow-compatible API
    request_timeout_s: float = Field(default=10.0, gt=0)
    peek_timeout_s: float = Field(default=3.0, gt=0)  # reading first unconsumed messages
    dlq_scan_limit: int = Field(default=100_000, ge=0)  # records per DLQ scan, newest first
    freshness_sample: int = Field(default=400, ge=0)  # newest records per tier topic
    include_internal: bool = False  # groups whose name starts with "_" (tools, connect)
