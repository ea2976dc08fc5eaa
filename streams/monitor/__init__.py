"""Operators' monitor: consumer lag with Burrow status, pipeline health, metrics, status page.

``burrow``, ``freshness``, ``offsets_log``, ``model`` and ``page`` are pure (no Kafka client);
``collector``, ``health`` and ``kafka_io`` talk to the broker with confluent-kafka.
Nothing here imports faust.
"""

from streams.monitor.burrow import Commit, Status, evaluate_group, evaluate_partition
from streams.monitor.config import MonitorConfig
from streams.monitor.freshness import Percentiles, freshness_percentiles
from streams.monitor.model import GroupLag, PartitionLag, PipelineHealth, Snapshot

__all__ = [
    "Commit",
    "GroupLag",
    "MonitorConfig",
    "PartitionLag",
    "Percentiles",
    "PipelineHealth",
    "Snapshot",
    "Status",
    "evaluate_group",
    "evaluate_partition",
    "freshness_percentiles",
]
