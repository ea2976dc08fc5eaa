"""Everything of faust-streaming the worker touches: the app and its settings, the input topics,
the tables' stores, the consumer (offsets, seeks, resumes, committing only processed
offsets), batches and acks, running the worker. Every use of a faust/aiokafka internal is
here, so an upgrade is checked in one place (faust-streaming 0.15.3, aiokafka 0.14); the
rest of the shell sees the small protocols of :mod:`streams.offsets`,
:mod:`streams.watchdog` and :mod:`streams.checkpoint`.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TP
from mode.services import WaitResults

from schemas.kafka import faust_broker_urls, faust_credentials
from streams.config import COUNTERS_TABLE, RECORDS_TABLE, StreamsConfig
from streams.diskstate import DiskState, batch_writer
from streams.faustbatch import take_batches
from streams.state import MemoryState, StateStore
from streams.validate import RawMessage

__all__ = [
    "FaustConsumer",
    "FaustTable",
    "RawSchema",
    "acker",
    "batches",
    "commit_processed_only",
    "coordinates",
    "counters_table",
    "fast_delivery",
    "input_topic",
    "kafka_time",
    "new_app",
    "on_assigned",
    "raw_headers",
    "raw_messages",
    "records_table",
    "run_app",
]

logger = logging.getLogger(__name__)


def new_app(config: StreamsConfig) -> faust.App:
    """The faust app with the worker's settings and nothing else (faust's environment
    variables ignored; web views: only the shell's own)."""
    return faust.App(
        config.group_id,
        # faust would read its settings from the environment too (APP_WEB_TABLES_ENABLED=true
        # turns its table views back on, over the passed False): the worker's settings come
        # from StreamsConfig alone
        env={},
        broker=faust_broker_urls(config.kafka),
        broker_credentials=faust_credentials(config.kafka),
        store=config.store,
        datadir=config.data_dir,
        topic_partitions=config.partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        broker_session_timeout=config.broker_session_timeout_s,
        broker_heartbeat_interval=config.broker_heartbeat_interval_s,
        broker_commit_every=config.batch_size,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=max(4096, config.batch_size * 2),
        producer_acks=-1,
        web_enabled=config.web_enabled,
        web_port=config.web_port,
        web_bind=config.web_host,
        web_host=config.web_host,
        # faust's own views expose table data (/table), the cluster's topology (/router),
        # sensors and assignment (/, /assignment), the service graph and metrics: all off;
        # only streams.app's /aggregates/ and /stats/ are served
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        table_cleanup_interval=3600.0,
    )


def input_topic(app: faust.App, name: str, partitions: int, *, internal: bool = False) -> Any:
    """An input topic of raw bytes (no faust codec; events built by :class:`RawSchema`)."""
    return app.topic(
        name,
        schema=RawSchema(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=internal,
    )


class RawSchema(faust.Schema):
    """A raw topic's schema (``bytes`` keys and values, the ``raw`` codec) whose decoding
    builds the event directly: faust's returns a fetched key or value that is ``bytes`` or
    ``None`` unchanged, through five calls each (the schema's, the serializer registry's, the
    codec's, ``want_bytes`` twice) and a settings look-up for the event class. Anything else
    is decoded by faust."""

    def compile(self, app: Any, **kwargs: Any) -> Any:
        by_faust = super().compile(app, **kwargs)
        propagate_default = kwargs.get("default_propagate", False)
        if not (
            self.key_type is bytes
            and self.value_type is bytes
            and self.key_serializer == "raw"
            and self.value_serializer == "raw"
        ):
            return by_faust
        event_type = app.conf.Event

        async def decode(message: Any, *, propagate: bool = propagate_default) -> Any:
            key, value = message.key, message.value
            if (key is None or type(key) is bytes) and (value is None or type(value) is bytes):
                return event_type(app, key, value, message.headers, message)
            return await by_faust(message, propagate=propagate)

        return decode


class FaustTable:
    """A faust table as the shell uses it: its changelog topic and its store, read and written
    directly (faust's ``table[key]`` takes the partition from the "current event", which
    batching makes wrong)."""

    def __init__(self, table: Any, *, rocksdb: bool = False) -> None:
        self.table = table
        self.rocksdb = rocksdb

    @property
    def changelog(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def data(self) -> dict[str, Any]:
        """The memory store's dict (the counters table)."""
        data = self.table.data.data
        assert isinstance(data, dict), f"table {self.table.name} needs the memory:// store"
        return data

    def record_state(self) -> StateStore:
        """The records table as a :class:`StateStore` (its RocksDB databases, or its dict)."""
        if self.rocksdb:
            from rocksdict import WriteBatch

            db_for = self.table.data._db_for_partition
            return DiskState(db_for, write=batch_writer(db_for, lambda: WriteBatch(raw_mode=True)))
        return MemoryState(self.data())

    def track(self, changes: Sequence[tuple[str, Any, int]]) -> None:
        """Tell the memory store which partition each written key belongs to (so a revoked
        partition's keys are dropped; the RocksDB store keeps a database per partition and
        has nothing to track)."""
        key_partition = getattr(self.table.data, "_key_partition", None)
        if key_partition is not None:
            for key, _value, partition in changes:
                key_partition[key] = partition


def records_table(app: faust.App, config: StreamsConfig) -> FaustTable:
    """The per-record state table (RocksDB through rocksdict, or memory), co-partitioned with
    the raw topic."""
    rocksdb = config.state_store == "rocksdb"
    options = {
        "block_cache_size": config.rocksdb_cache_mib << 20,
        "write_buffer_size": config.rocksdb_write_buffer_mib << 20,
        "max_write_buffer_number": 2,
        "driver": "rocksdict",
    }
    table = app.Table(
        RECORDS_TABLE,
        key_type=str,
        partitions=config.partitions,
        # "rocksdb:records", not "rocksdb://": faust treats an empty URL as "no store given"
        store=f"rocksdb:{RECORDS_TABLE}" if rocksdb else "memory://",
        options=options if rocksdb else None,
    )
    return FaustTable(table, rocksdb=rocksdb)


def counters_table(app: faust.App, config: StreamsConfig) -> FaustTable:
    """The live counters table (memory), co-partitioned with the aggregate-delta topic."""
    table = app.Table(COUNTERS_TABLE, key_type=str, partitions=config.aggregate_partitions)
    return FaustTable(table)


class FaustConsumer:
    """faust's consumer as :class:`streams.offsets.ConsumerPort` (topic, partition pairs)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    @property
    def _consumer(self) -> Any:
        return self.app.consumer

    def committed(self, topic: str) -> dict[int, int | None]:
        """The committed offsets faust caches for ``topic`` (may be empty after an
        assignment)."""
        offsets = getattr(self._consumer, "_committed_offset", {}) or {}
        return {tp.partition: off for tp, off in offsets.items() if tp.topic == topic}

    async def start_offset(self, topic: str, partition: int) -> int | None:
        """Where the group resumes ``partition``, from the broker (faust's cache can lack it,
        hold 0 as "none", or run ahead of the broker after a failed commit): the committed
        offset, else the partition's first offset; ``None`` when the broker cannot say."""
        try:
            thread = self._consumer._thread
            inner = thread._ensure_consumer()
            from aiokafka import TopicPartition as AioTP

            tp = AioTP(topic, partition)
            offset = await thread.call_thread(inner.committed, tp)
            if offset is None:
                offset = (await thread.call_thread(inner.beginning_offsets, [tp]))[tp]
        except Exception as exc:  # an aid: never crash the worker over it
            logger.warning(
                "could not read the start offset topic=%s partition=%d from the broker: %r",
                topic,
                partition,
                exc,
            )
            return None
        return int(offset)

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        """Seek on the consumer's own thread.

        faust's ``Consumer.seek`` calls aiokafka's ``seek`` from the event-loop thread while
        the consumer thread may be inside ``Fetcher.fetched_records``; the two race on the
        fetcher's buffers (``KeyError`` in ``del self._records[tp]``, seen crashing a worker).
        ``seek_wait`` runs the seek on the consumer thread instead."""
        consumer, tp = self._consumer, TP(topic, partition)
        thread = getattr(consumer, "_thread", None)
        if thread is None or not hasattr(thread, "seek_wait"):
            await consumer.seek(tp, offset)
            return
        await thread.seek_wait({tp: offset})
        consumer._read_offset[tp] = offset if offset else None

    def assigned(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    async def ends(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The end offsets (high watermarks) of ``partitions``."""
        found = await self._consumer.highwaters(*(TP(t, p) for t, p in partitions))
        return {(tp.topic, tp.partition): end for tp, end in found.items() if end is not None}

    def resume(self, topic: str, partition: int) -> None:
        self._consumer.resume_partitions([TP(topic, partition)])


def commit_processed_only(
    app: faust.App, committable: Mapping[str, Callable[[int], int | None]]
) -> None:
    """For the input topics of ``committable`` (topic → partition → the offset the shell may
    commit, ``streams.offsets.GuardedInput.committable``) faust commits that offset and
    nothing it derives from its acked offsets: its ``_new_offset`` commits a run of acked
    offsets that does not start at the committed one when its cached committed offset is
    None or 0 (after a restart) or one below the run, and acks a jump as a "gap" (for
    compacted topics); the shell acks events it held back, too. A jump is logged."""
    consumer: Any = app.consumer
    if getattr(consumer, "_tuyen_commit_guard", False):
        return
    add_gap_of, new_offset_of = consumer._add_gap, consumer._new_offset

    async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic not in committable:
            await add_gap_of(tp, offset_from, offset_to)
            return
        logger.warning(
            "offset jump topic=%s partition=%d from=%d to=%d: not acked as a gap",
            tp.topic,
            tp.partition,
            offset_from,
            offset_to,
        )

    def new_offset(tp: Any) -> int | None:
        position = committable.get(tp.topic)
        if position is None:
            offset: int | None = new_offset_of(tp)
            return offset
        offset = position(tp.partition)
        acked = consumer._acked.get(tp)
        if offset is not None and acked:  # forget the acks the commit passed
            done = [o for o in acked if o < offset]
            acked[:] = [o for o in acked if o >= offset]
            consumer._acked_index[tp].difference_update(done)
        return offset

    consumer._add_gap = add_gap
    consumer._new_offset = new_offset
    consumer._tuyen_commit_guard = True


class _FlowEvent(asyncio.Event):
    """faust's consumer's ``suspend_flow`` (an ``asyncio.Event``), whose :meth:`wait`
    :func:`fast_delivery` can tell apart (a :class:`_FlowWait`; the event itself behaves as
    before)."""

    def wait(self) -> Any:  # (an awaitable, as Event.wait's coroutine is)
        return _FlowWait(self)


class _FlowWait:
    """``suspend_flow.wait()``: awaited, it is ``asyncio.Event.wait``."""

    __slots__ = ("event",)

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def __await__(self) -> Generator[Any, None, bool]:
        return asyncio.Event.wait(self.event).__await__()


class _Rest:
    """Awaitable: the rest of a coroutine whose first step ran (it yielded ``yielded``),
    driven on as asyncio's Task drives one: each value it yields is passed to the awaiting
    task, what the task sends or throws is passed back in (a cancellation included)."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, None, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # the task's cancellation, passed on
                step = coro.throw
                arg: Any = exc
            else:
                step, arg = coro.send, sent
            try:
                yielded = step(arg)
            except StopIteration as stop:
                return stop.value


def fast_delivery(app: faust.App) -> None:
    """faust delivers each fetched message by ``wait_first(callback(message),
    suspend_flow.wait())`` (``Consumer._drain_messages``): four tasks per message (the
    callback, the flow's, the consumer's stopped and crashed events), an ``asyncio.wait``
    and three cancellations, so that a rebalance (``stop_flow``) can abandon a delivery
    blocked on a full stream buffer. Here the callback's first step runs directly while the
    flow runs and the consumer is neither stopped nor crashed; a callback that finishes in it
    (the stream buffer has room: the common case) is done, one that suspends continues under
    faust's own ``wait_first`` with the flow's event, so a rebalance abandons it as before.
    Anything else goes to faust's ``wait_first`` unchanged."""
    consumer: Any = app.consumer
    if getattr(consumer, "_tuyen_fast_delivery", False):
        return
    flow = consumer.suspend_flow
    if type(flow) is not asyncio.Event:  # not the faust this was written for: left as it is
        logger.warning("faust's suspend_flow is a %s: message delivery left to faust", type(flow))
        return
    flow.__class__ = _FlowEvent  # the same event (its state and waiters kept)
    stopped, crashed = consumer._stopped, consumer._crashed
    wait_first = consumer.wait_first
    coroutine = types.CoroutineType

    async def first(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109 (faust's signature)
        if (
            len(coros) == 2
            and type(coros[1]) is _FlowWait
            and type(coros[0]) is coroutine
            and timeout is None
            and not (flow.is_set() or stopped.is_set() or crashed.is_set())
        ):
            delivery = coros[0]
            try:
                yielded = delivery.send(None)
            except StopIteration as done:
                return WaitResults([delivery], [done.value], False)
            return await wait_first(_Rest(delivery, yielded), coros[1])
        return await wait_first(*coros, timeout=timeout)

    consumer.wait_first = first
    consumer._tuyen_fast_delivery = True


def on_assigned(app: faust.App, callback: Callable[[], None]) -> None:
    """Call ``callback`` after every partition assignment."""

    async def assigned(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        callback()

    app.on_partitions_assigned.connect(assigned)  # type: ignore[arg-type]


def batches(stream: Any, size: int, within_s: float) -> AsyncIterator[Sequence[Any]]:
    """The stream's events in batches of at most ``size`` (or what came within ``within_s``),
    NOT acked: the shell acks each batch's events itself (:func:`acker`) as the last step of
    its checkpoint, so a batch that fails is never acked (``take_events`` acks a batch when
    its generator is closed, which a failed agent's is, too). Taken from the channel's queue
    in one go (:func:`streams.faustbatch.take_batches`: faust's per-event work without its
    per-event task hops; "Performance"; an unusual stream is left to faust's ``noack_take``)."""
    return take_batches(stream, size, within_s)


def acker(stream: Any) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """Acks events of ``stream`` (faust commits an offset once its event is acked)."""

    async def ack(events: Sequence[Any]) -> None:
        for event in events:
            await stream.ack(event)

    return ack


def interrupter(stream: Any) -> Callable[[BaseException], None]:
    """Throws an error into ``stream``'s iteration (faust's ``Stream.throw``, not awaited):
    the agent waiting for its next batch wakes (``faustio.batches`` ends, faust's take
    raises it)."""

    def interrupt(exc: BaseException) -> None:
        stream.channel._throw(exc)

    return interrupt


def coordinates(event: Any) -> tuple[int, int]:
    """(partition, offset) of a faust event."""
    return event.message.partition, event.message.offset


def raw_headers(raw: Any) -> list[tuple[str, bytes | None]]:
    if not raw:
        return []
    if isinstance(raw, Mapping):
        return list(raw.items())
    return list(raw)


def kafka_time(seconds: float | None) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC)


def raw_messages(events: Sequence[Any]) -> list[RawMessage]:
    """faust events → the pure pipeline's :class:`RawMessage` (coordinates included).

    A Kafka timestamp equal to the one before (messages produced in the same millisecond) is
    not converted again: their events share one ``datetime`` (issue 17; the national
    record's receive month is remembered by it, ``streams.national``)."""
    out: list[RawMessage] = []
    append = out.append
    last_seconds: float | None = -1.0
    last_time = datetime.min  # replaced at the first event
    for e in events:
        m = e.message
        seconds = m.timestamp
        if seconds != last_seconds or not seconds:
            last_seconds, last_time = seconds, kafka_time(seconds)
        append(
            RawMessage(
                m.key,
                m.value,
                raw_headers(m.headers),
                m.topic,
                m.partition,
                m.offset,
                last_time,
            )
        )
    return out


def run_app(app: faust.App, log_level: str, on_exit: Callable[[], None]) -> None:
    """Run ``app`` as a worker in this process until SIGTERM/SIGINT or a crashed agent
    (blocks); ``on_exit`` runs after it stopped, whichever way."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        on_exit()
