"""Thin confluent-kafka helpers shared by the lag and health collectors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import ClusterMetadata, OffsetSpec

from schemas.kafka import KafkaConnection, admin, consumer
from streams.monitor.exceptions import BrokerQueryError

__all__ = ["READER_GROUP_PREFIX", "KafkaClients", "now_ms"]

logger = logging.getLogger(__name__)

TP = tuple[str, int]
#: The id of the monitor's assign-only readers (never joined, never committed; librdkafka
#: still looks its coordinator up, which needs Describe on it).
READER_GROUP_PREFIX = "_tuyen-monitor-reader-"
#: Errors of a cluster whose leaders are still settling (brokers just started or restarted,
#: a leader moved): ``list_offsets`` asks again until its timeout, as librdkafka does for
#: the errors it marks retriable itself
_SETTLING: frozenset[int] = frozenset(
    {
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)
_RETRY_S = 0.1


def _settling(exc: Exception) -> bool:
    """Whether ``exc`` is a cluster's leaders still settling (retriable or ``_SETTLING``)."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in _SETTLING)


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch (the default clock)."""
    return time.time_ns() // 1_000_000


class KafkaClients:
    """One AdminClient, and an assign-only consumer per read (never joins a group, never commits).

    A fresh consumer per read costs a connection (~10 ms) but starts fetching at once; a
    long-lived one re-assigned to new topics waited ~1 s each time on librdkafka's backoffs.
    """

    def __init__(self, kafka: KafkaConnection, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.kafka = kafka
        self.admin = admin(kafka)
        self._reader_config: dict[str, object] = {
            # an id is required by the client; we only assign() so no group is ever joined
            "group.id": f"{READER_GROUP_PREFIX}{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50,
            # short backoffs: an idle client otherwise waits ~1 s for a partition leader
            "retry.backoff.ms": 10,
            "retry.backoff.max.ms": 100,
            "isolation.level": "read_committed",
        }

    def close(self) -> None:
        """Nothing held open: readers live for one read, the admin client needs no close."""

    def partitions(self, topics: Iterable[str]) -> list[TP]:
        """Existing partitions of the topics (topics that do not exist are left out)."""
        wanted = set(topics)
        md = self.metadata()
        return sorted(
            (name, p)
            for name, t in md.topics.items()
            if name in wanted and t.error is None
            for p in t.partitions
        )

    def metadata(self) -> ClusterMetadata:
        """The cluster metadata (brokers, topics, partitions with leader, replicas, ISR)."""
        try:
            return self.admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise BrokerQueryError(f"metadata failed: {exc}") from exc

    def offsets(self, tps: Iterable[TP], spec: Callable[[], OffsetSpec]) -> dict[TP, int]:
        """``list_offsets`` for many partitions in one request (``OffsetSpec.latest`` etc.)."""
        return {tp: off for tp, (off, _) in self._listed({tp: spec() for tp in tps}).items()}

    def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        return self.offsets(tps, OffsetSpec.latest)

    def start_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        return self.offsets(tps, OffsetSpec.earliest)

    def offsets_after(self, stamps: dict[TP, int]) -> dict[TP, int]:
        """First offset whose timestamp is > the given ms per partition; -1 when none."""
        req = {tp: OffsetSpec.for_timestamp(ts + 1) for tp, ts in stamps.items()}
        return {tp: off for tp, (off, _) in self._listed(req).items()}

    def _listed(self, req: dict[TP, OffsetSpec]) -> dict[TP, tuple[int, int]]:
        """``list_offsets`` returning (offset, timestamp ms) per partition."""
        if not req:
            return {}
        deadline = time.monotonic() + self.timeout_s
        while True:
            futs = self.admin.list_offsets(
                {TopicPartition(t, p): spec for (t, p), spec in req.items()},
                request_timeout=self.timeout_s,
            )
            keys = list(futs)
            try:
                results = [futs[k].result(timeout=self.timeout_s) for k in keys]
                break
            except (KafkaException, TimeoutError) as exc:
                if not _settling(exc) or time.monotonic() + _RETRY_S > deadline:
                    raise BrokerQueryError(f"broker query failed: {exc}") from exc
                logger.info("list_offsets asked again partitions=%d error=%s", len(req), exc)
                time.sleep(_RETRY_S)
        return {
            (k.topic, k.partition): (int(r.offset), int(r.timestamp))
            for k, r in zip(keys, results, strict=True)
        }

    def timestamps_at(self, positions: dict[TP, int], max_rounds: int = 64) -> dict[TP, int]:
        """The timestamp (ms) of the message at each ``positions`` offset, from ListOffsets
        alone: what Describe on a topic allows, without reading (Read) a record.

        ListOffsets by timestamp ``t`` answers the first offset whose timestamp is ≥ ``t``,
        and that message's timestamp. A bisection over time per partition, every partition in
        one request per round, ends on the message itself (exact) or on two adjacent
        milliseconds (its timestamp). Timestamps that go backwards within a partition
        (CreateTime set by a producer) give the nearest such answer. Partitions without the
        message (empty, or removed by retention) are left out."""
        first = self._listed({tp: OffsetSpec.for_timestamp(0) for tp in positions})
        newest = self._listed({tp: OffsetSpec.max_timestamp() for tp in positions})
        found: dict[TP, int] = {}
        lo: dict[TP, int] = {}
        hi: dict[TP, int] = {}
        for tp, target in positions.items():
            off, ts = first.get(tp, (-1, -1))
            if off < 0 or off > target:
                continue
            if off == target:
                found[tp] = ts
                continue
            lo[tp], hi[tp] = ts, max(ts, newest.get(tp, (-1, ts))[1]) + 1
        for _ in range(max_rounds):
            todo = {tp: (lo[tp] + hi[tp]) // 2 for tp in lo if tp not in found}
            for tp, mid in list(todo.items()):
                if mid <= lo[tp]:  # adjacent milliseconds: the message's is the lower one
                    found[tp] = lo[tp]
                    del todo[tp]
            if not todo:
                break
            answers = self._listed({tp: OffsetSpec.for_timestamp(ms) for tp, ms in todo.items()})
            for tp, mid in todo.items():
                off, ts = answers.get(tp, (-1, -1))
                if off < 0 or off > positions[tp]:
                    hi[tp] = mid
                elif off == positions[tp]:
                    found[tp] = ts
                else:
                    lo[tp] = max(ts, mid)
        for tp in lo:
            found.setdefault(tp, lo[tp])
        return found

    def read(
        self,
        starts: dict[TP, int],
        ends: dict[TP, int],
        max_seconds: float,
        *,
        first_only: bool = False,
    ) -> Iterable[Message]:
        """Messages from ``starts`` up to (excluding) ``ends`` per partition, bounded in time.

        ``first_only``: just the first message at or after the start of each partition.
        """
        todo = {tp: end for tp, end in ends.items() if starts.get(tp, end) < end}
        if not todo:
            return
        reader = consumer(self.kafka, self._reader_config)
        reader.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in todo])
        deadline = time.monotonic() + max_seconds
        try:
            while todo and time.monotonic() < deadline:
                for msg in reader.consume(num_messages=500, timeout=0.05):
                    tp = (msg.topic() or "", msg.partition() or 0)
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            if tp in todo and (msg.offset() or 0) >= todo[tp]:
                                del todo[tp]
                        else:
                            logger.warning("read error topic=%s error=%s", tp[0], err)
                        continue
                    end = todo.get(tp)
                    offset = msg.offset() or 0
                    if end is None or offset >= end:
                        continue
                    yield msg
                    if first_only or offset + 1 >= end:
                        del todo[tp]
            if todo:
                logger.warning("read stopped at deadline partitions_left=%d", len(todo))
        finally:
            reader.close()
