"""The sink consumer: a thin confluent-kafka shell around :class:`SegmentWriter`.

Loop: ``consume(batch_size, timeout)`` (the poll timeout, or less when a flush is due sooner:
``SegmentWriter.due_in``) → group by partition → the writer encodes and
writes the blocks of the open segment that received rows as its parts (the whole segment when
it closes) and commits (synchronously, with the segment start, and a close by age under way,
as metadata) only after the files they cover are durable (sinks.parts.CutOrder). On
assignment each partition seeks back to its open segment's start, so the segment is rebuilt
in memory and rewrites the same files; a partition the group never committed starts at its
log start, which is committed at once (an idle sink's group has a position: the monitor finds
it OK, not NOTFOUND). At-least-once delivery, exactly-once effect in the store.

A commit that fails with a retriable error (broker outage, coordinator moving, rebalance in
progress) is kept pending and retried on the next steps with exponential backoff (a close by
age whose intent was not taken is not made, and is tried again at the next flush); a revoke
or an assignment drops the pending commits of those partitions (the seek back to the segment
start rebuilds what they covered). Any other error propagates: the caller (the ``tuyen sink``
command) stops the whole process with a non-zero exit code.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
)
from confluent_kafka import TopicPartition as TP

from schemas.dlq import header_value
from schemas.freshness import CE_TIME_HEADER
from schemas.hierarchy.exceptions import UnknownUnit
from schemas.hierarchy.merger import restate_province
from schemas.kafka import consumer
from sinks.config import SinkConfig
from sinks.encode import MessageLike, encoder_for
from sinks.erasure import ErasedWrites
from sinks.metrics import FreshnessTracker, SinkHops, event_seconds
from sinks.roots import CODE
from sinks.segments import Commit, SegmentWriter, parse_segment_metadata
from sinks.signoff.encode import signoff_encoder
from sinks.store import Store

__all__ = ["SinkRunner", "SinkStats", "retriable_commit_error"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Commit (and offset lookup) errors that a later attempt may not meet: the broker or the
#: group coordinator is away or moving, or the group is rebalancing (a revoke follows).
_RETRIABLE_CODES = frozenset(
    {
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
    }
)
_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 5.0
_LOOKUP_DEADLINE_S = 120.0
#: the shortest wait of one ``consume()`` (a flush due now: take what has come meanwhile)
_MIN_POLL_S = 0.005


def retriable_commit_error(exc: KafkaException) -> bool:
    """True when a commit that raised ``exc`` may succeed later (never for fatal errors)."""
    err = exc.args[0] if exc.args else None
    if not isinstance(err, KafkaError) or err.fatal():
        return False
    return bool(err.retriable()) or err.code() in _RETRIABLE_CODES


@dataclass
class SinkStats:
    """Counters of one run."""

    messages: int = 0
    commits: int = 0
    files_written: int = 0


def province_router(template: str, default: Store) -> Callable[[str], Store]:
    """Directory → store: a record-level directory (``<tier>/province=<code>/…``) goes to
    the root of the province that owns it now (``template`` with ``{code}``); anything else
    (the sink's own dead rows) to ``default``."""
    opened: dict[str, Store] = {}

    def route(directory: str) -> Store:
        parts = directory.split("/", 2)
        if len(parts) < 2 or not parts[1].startswith("province="):
            return default
        code = parts[1].removeprefix("province=")
        try:
            owner = restate_province(code)
        except UnknownUnit:  # an unknown code: kept with the sink's own rows
            return default
        store = opened.get(owner)
        if store is None:
            store = opened[owner] = Store.open(template.replace(CODE, owner))
        return store

    return route


class SinkRunner:
    """Runs one sink until ``stop`` is set (or, with ``exit_when_idle_s``, until idle)."""

    def __init__(
        self, config: SinkConfig, store: Store | None = None, erasure: ErasedWrites | None = None
    ) -> None:
        self.config = config
        self.store = store or Store.open(config.store_root)
        self.writer = SegmentWriter(
            store=self.store,
            topic=config.topic,
            encoder=(
                signoff_encoder(config.approver_keys, development=config.development)
                if config.kind == "signoff"
                else encoder_for(config.kind, config.tier)
            ),
            route=province_router(config.province_roots, self.store)
            if config.province_roots
            else None,
            rotate_rows=config.rotate_rows,
            rotate_bytes=config.rotate_bytes,
            max_age_s=config.max_segment_age_s,
            flush_interval_s=config.flush_after_s,
            fresh_flush_s=config.fresh_after_s,
            fresh_flush_rows=config.fresh_flush_rows,
            commit=self._commit,
            erasure=erasure or ErasedWrites(),
        )
        self.stats = SinkStats()
        conf: dict[str, object] = {
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
        self.consumer = consumer(config.kafka, conf)
        self.assigned = threading.Event()
        self.assigned_at = 0.0
        #: commits not yet accepted by the broker (latest per partition), retried with backoff
        self._pending: dict[int, Commit] = {}
        self._retry_at = 0.0
        self._backoff_s = _BACKOFF_MIN_S
        #: what ``tuyen sink --metrics-port`` exports (sinks.metrics)
        self.freshness = FreshnessTracker()
        #: where the sink's own time goes (logged when it stops; benchmarks/bench_e2e.py)
        self.hops = SinkHops()
        self.errors = 0
        self.last_commit_time: float | None = None

    # ---- what the metrics read --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def files_written(self) -> int:
        return self.writer.files_written

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written

    @property
    def commits(self) -> int:
        return self.stats.commits

    # ---- rebalance ------------------------------------------------------------------------

    def _lookup(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried with backoff while it fails with a retriable error."""
        deadline = time.monotonic() + _LOOKUP_DEADLINE_S
        backoff = _BACKOFF_MIN_S
        while True:
            try:
                return call()
            except KafkaException as exc:
                if not retriable_commit_error(exc) or time.monotonic() + backoff > deadline:
                    raise
                logger.warning(
                    "sink lookup failed, retrying sink=%s what=%s error=%s",
                    self.config.name,
                    what,
                    exc,
                )
                time.sleep(backoff)  # inside a rebalance callback: nothing else to do
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    @staticmethod
    def _watermarks(consumer: Consumer, tp: TP) -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(
            TP(tp.topic, tp.partition), timeout=30, cached=False
        )
        return int(low), int(high)

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        for tp in partitions:  # the seek back to the segment start covers them
            self._pending.pop(tp.partition, None)
            self.freshness.forget(tp.partition)
            self.hops.forget(tp.partition)
        committed = self._lookup("committed", lambda: consumer.committed(partitions, timeout=30))
        placed = []
        for tp in committed:
            mark = parse_segment_metadata(tp.metadata)
            offset = tp.offset
            if offset >= 0:
                low, _high = self._lookup(
                    "watermarks", functools.partial(self._watermarks, consumer, tp)
                )
                # seek back to the open segment, unless retention has already removed it
                if mark is None or not low <= mark.start <= offset:
                    mark = None
                resume = offset if mark is None else mark.start
                self.writer.resume(tp.partition, resume, committed=offset, mark=mark)
                placed.append(TP(tp.topic, tp.partition, resume))
            else:  # never committed: start at the log's start and commit it (an idle
                # sink's group then has a position, OK for the monitor, never NOTFOUND; a
                # restart resumes the same segment start, so the same file names)
                low, _high = self._lookup(
                    "watermarks", functools.partial(self._watermarks, consumer, tp)
                )
                self.writer.resume(tp.partition, low, committed=low)
                self._pending[tp.partition] = Commit(tp.partition, low, low)
                placed.append(TP(tp.topic, tp.partition, low))
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
            self._pending.pop(tp.partition, None)
            self.freshness.forget(tp.partition)
            self.hops.forget(tp.partition)
        logger.info(
            "sink revoked sink=%s partitions=%s",
            self.config.name,
            ",".join(str(tp.partition) for tp in partitions),
        )

    # ---- loop -------------------------------------------------------------------------------

    @property
    def pending_commits(self) -> dict[int, Commit]:
        """Commits the broker has not accepted yet (partition → latest), for tests."""
        return dict(self._pending)

    def _commit(self, commits: Sequence[Commit], *, force: bool = False) -> bool:
        """Commit ``commits`` with whatever is still pending; True when nothing is left.

        A retriable failure keeps them pending until the next attempt (not before the
        backoff has passed unless ``force``); any other failure raises."""
        now = time.time()
        for c in commits:
            self._pending[c.partition] = c
            if not c.closing:  # not an intent: the files before c.offset are durable
                self.hops.written(c.partition, c.offset, now)
        if not self._pending:
            return True
        if not force and time.monotonic() < self._retry_at:
            return False
        offsets = [
            TP(self.config.topic, c.partition, c.offset, metadata=c.metadata)
            for c in self._pending.values()
        ]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if not retriable_commit_error(exc):
                raise
            self.errors += 1
            self._retry_at = time.monotonic() + self._backoff_s
            logger.warning(
                "sink commit failed, will retry sink=%s partitions=%s backoff_s=%.1f error=%s",
                self.config.name,
                ",".join(f"{p}@{c.offset}" for p, c in sorted(self._pending.items())),
                self._backoff_s,
                exc,
            )
            self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
            return False
        if self._backoff_s > _BACKOFF_MIN_S:
            logger.info("sink commit succeeded again sink=%s", self.config.name)
        self.last_commit_time = time.time()
        for c in self._pending.values():
            self.freshness.committed(c.partition, c.offset, self.last_commit_time)
            self.hops.committed(c.partition, c.offset, self.last_commit_time)
        self._pending.clear()
        self._retry_at = 0.0
        self._backoff_s = _BACKOFF_MIN_S
        self.stats.commits += 1
        return True

    def step(self) -> int:
        """One consume/write/commit round; the number of messages consumed."""
        # wait for input no longer than until the next flush is due (librdkafka's consume
        # returns at the timeout or a full batch, not as soon as something came); the whole
        # poll timeout while failed commits back off (a close by age waits for its intent)
        due = self.writer.due_in()
        timeout = self.config.poll_timeout_s
        if due is not None and not (self._pending and time.monotonic() < self._retry_at):
            timeout = min(timeout, max(due, _MIN_POLL_S))
        messages: list[Message] = self.consumer.consume(
            num_messages=self.config.batch_size, timeout=timeout
        )
        consumed_at = self.hops.flush_started = time.time()
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                logger.warning("sink consume error sink=%s error=%s", self.config.name, err)
                self.errors += 1
                continue
            by_partition[int(msg.partition() or 0)].append(msg)
        for partition, batch in sorted(by_partition.items()):
            msgs = cast(Sequence[MessageLike], batch)
            self.freshness.written(
                partition,
                [int(m.offset() or 0) for m in msgs],
                [event_seconds(header_value(m.headers(), CE_TIME_HEADER)) for m in msgs],
            )
            kind, stamp = batch[0].timestamp()
            topic_time = stamp / 1000 if kind != TIMESTAMP_NOT_AVAILABLE else consumed_at
            self.hops.consumed(partition, int(msgs[0].offset() or 0), topic_time, consumed_at)
            self.writer.add(partition, msgs)  # commits what it cut (self._commit)
        self.hops.flush_started = time.time()
        self.writer.flush_due()  # rows waiting flush_after_s since they arrived; closes by age
        self._commit([])  # what is still pending, once its backoff has passed
        count = sum(len(b) for b in by_partition.values())
        self.stats.messages += count
        self.stats.files_written = self.writer.files_written
        return count

    def _final_commit(self, attempts: int = 5) -> None:
        """Flush and commit before closing; retriable failures are retried a few times, then
        left (the next owner seeks back to the last committed segment start)."""
        self.writer.flush_due(force=True)
        for i in range(attempts):
            if self._commit([], force=True):
                return
            if i + 1 < attempts:
                time.sleep(min(_BACKOFF_MAX_S, _BACKOFF_MIN_S * 2**i))
        logger.warning(
            "sink stopping with uncommitted offsets sink=%s partitions=%s",
            self.config.name,
            ",".join(str(p) for p in sorted(self._pending)),
        )

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
            self._final_commit()
        finally:
            self.consumer.close()
        logger.info(
            "sink stopped sink=%s messages=%d files=%d commits=%d",
            self.config.name,
            self.stats.messages,
            self.writer.files_written,
            self.stats.commits,
        )
        logger.info("sink hops sink=%s %s", self.config.name, self.hops.summary())
        return self.stats
