"""Reading the live aggregates back from the compacted ``aggregates.live`` topic (CLI)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from schemas.kafka import KafkaConnection, consumer

__all__ = ["read_live_aggregates"]


def read_live_aggregates(
    kafka: KafkaConnection,
    topic: str,
    *,
    unit: str | None = None,
    period: str | None = None,
    element: str | None = None,
    timeout_s: float = 30.0,
) -> dict[str, dict[str, Any]]:
    """Latest value per ``unit|period|element`` (read to the end offsets, no group commit)."""
    reader = consumer(
        kafka,
        {
            "group.id": f"tuyen-aggregates-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        },
    )
    try:
        meta = reader.list_topics(topic, timeout=timeout_s).topics[topic]
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        ends = {}
        for tp in parts:
            lo, hi = reader.get_watermark_offsets(tp, timeout=timeout_s)
            if hi > lo:
                ends[tp.partition] = hi
        reader.assign([tp for tp in parts if tp.partition in ends])
        latest: dict[str, dict[str, Any]] = {}
        done: set[int] = set()
        while len(done) < len(ends):
            msg = reader.poll(timeout_s)
            if msg is None:
                break
            partition = msg.partition() or 0
            err = msg.error()
            if err is not None:
                if err.code() == -191:  # _PARTITION_EOF
                    done.add(partition)
                    continue
                raise RuntimeError(str(err))
            if (msg.offset() or 0) + 1 >= ends[partition]:
                done.add(partition)
            key = (msg.key() or b"").decode()
            value = msg.value()
            if value is None:
                latest.pop(key, None)
                continue
            latest[key] = orjson.loads(value)
    finally:
        reader.close()
    return {
        k: v
        for k, v in latest.items()
        if (unit is None or v["unit"] == unit)
        and (period is None or v["period"] == period)
        and (element is None or v["element"] == element)
    }
