"""The sink consumer: a thin confluent-kafka shell around :class:`SegmentWriter`.

Loop: ``consume(batch_size, poll_timeout)`` → group by partition → the writer encodes and
writes segment files → offsets are committed (synchronously, with the segment start as
metadata) only after the files they cover are durable. On assignment each partition seeks
back to its open segment's start, so the segment is rebuilt and rewritten under the same
names. At-least-once delivery, exactly-once effect in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as TP

from sinks.config import SinkConfig
from sinks.encode import MessageLike, encoder_for
from sinks.segments import Commit, SegmentWriter, parse_segment_metadata, segment_metadata
from sinks.store import Store

__all__ = ["SinkRunner", "SinkStats"]

logger = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters of one run."""

    messages: int = 0
    commits: int = 0
    files_written: int = 0


class SinkRunner:
    """Runs one sink until ``stop`` is set (or, with ``exit_when_idle_s``, until idle)."""

    def __init__(self, config: SinkConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store.open(config.store_root)
        self.writer = SegmentWriter(
            store=self.store,
            topic=config.topic,
            encoder=encoder_for(config.kind, config.tier),
            rotate_rows=config.rotate_rows,
            rotate_bytes=config.rotate_bytes,
            max_age_s=config.max_segment_age_s,
            flush_interval_s=config.flush_interval_s,
        )
        self.stats = SinkStats()
        conf: dict[str, object] = {
            "bootstrap.servers": config.bootstrap,
            "group.id": config.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": config.session_timeout_ms,
            "heartbeat.interval.ms": max(300, config.session_timeout_ms // 4),
            "isolation.level": "read_committed",
            "client.id": f"tuyen-sink-{config.name}",
        }
        conf.update(config.consumer_overrides)
        self.consumer = Consumer(conf)
        self.assigned = threading.Event()
        self.assigned_at = 0.0

    # ---- rebalance ------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        placed = []
        for tp in committed:
            start = parse_segment_metadata(tp.metadata)
            offset = tp.offset
            if offset >= 0:
                low, _high = consumer.get_watermark_offsets(
                    TP(tp.topic, tp.partition), timeout=30, cached=False
                )
                # seek back to the open segment, unless retention has already removed it
                resume = start if start is not None and low <= start <= offset else offset
                self.writer.resume(tp.partition, resume)
                placed.append(TP(tp.topic, tp.partition, resume))
            else:
                self.writer.drop(tp.partition)
                placed.append(TP(tp.topic, tp.partition, OFFSET_INVALID))
        logger.info(
            "sink assigned sink=%s partitions=%s",
            self.config.name,
            ",".join(f"{tp.partition}@{tp.offset}" for tp in placed),
        )
        consumer.assign(placed)
        self.assigned_at = time.monotonic()
        self.assigned.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        for tp in partitions:
            self.writer.drop(tp.partition)
        logger.info(
            "sink revoked sink=%s partitions=%s",
            self.config.name,
            ",".join(str(tp.partition) for tp in partitions),
        )

    # ---- loop -------------------------------------------------------------------------------

    def _commit(self, commits: list[Commit]) -> None:
        if not commits:
            return
        latest: dict[int, Commit] = {}
        for c in commits:
            latest[c.partition] = c
        offsets = [
            TP(self.config.topic, c.partition, c.offset, metadata=segment_metadata(c.segment_start))
            for c in latest.values()
        ]
        self.consumer.commit(offsets=offsets, asynchronous=False)
        self.stats.commits += 1

    def step(self) -> int:
        """One consume/write/commit round; the number of messages consumed."""
        messages: list[Message] = self.consumer.consume(
            num_messages=self.config.batch_size, timeout=self.config.poll_timeout_s
        )
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                logger.warning("sink consume error sink=%s error=%s", self.config.name, err)
                continue
            by_partition[int(msg.partition() or 0)].append(msg)
        commits: list[Commit] = []
        for partition, batch in sorted(by_partition.items()):
            commits += self.writer.add(partition, cast(Sequence[MessageLike], batch))
        commits += self.writer.flush_due()
        self._commit(commits)
        count = sum(len(b) for b in by_partition.values())
        self.stats.messages += count
        self.stats.files_written = self.writer.files_written
        return count

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        exit_when_idle_s: float | None = None,
    ) -> SinkStats:
        """Consume until ``stop`` is set (or idle for ``exit_when_idle_s``); flush; close."""
        stop = stop or threading.Event()
        self.consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                if self.step():
                    last_message = time.monotonic()
                elif (
                    exit_when_idle_s is not None
                    and self.assigned.is_set()
                    and time.monotonic() - max(last_message, self.assigned_at) >= exit_when_idle_s
                ):
                    break
            self._commit(self.writer.flush_due(force=True))
        finally:
            self.consumer.close()
        logger.info(
            "sink stopped sink=%s messages=%d files=%d commits=%d",
            self.config.name,
            self.stats.messages,
            self.writer.files_written,
            self.stats.commits,
        )
        return self.stats
