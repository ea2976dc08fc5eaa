"""The faust app: built by :func:`build_app` from a :class:`StreamsConfig`; agents are thin
shells over :class:`~streams.pipeline.BatchProcessor` and :class:`~streams.aggregate.LiveCounters`.

Agents (``concurrency=1``, at-least-once; faust commits offsets only of acked events):

- ``validate``: raw topic → ``stream.take_events(batch_size, within)`` → stage 1 in a process
  pool (``verify_processes``; 0 = a small thread pool here), chunk by chunk → stage 2 of each
  chunk as it returns → publish outputs, DLQ records and aggregate deltas with one flush
  (confluent-kafka) → write the changed record states to the ``records`` table's changelog
  (explicit partition = the raw partition), then to disk; faust acks the batch's events when
  the agent takes the next batch. (Measured and undone: publishing batch k while batch k+1 is
  checked: the event-loop and publishing threads then fight for the GIL, +40 µs of CPU per
  event; see docs/streams.md, "Performance".)
- ``count``: aggregate-delta topic (partitioned by unit) → ``LiveCounters`` → publish the new
  values to ``aggregates.live`` (compacted) → write the ``counters`` table's changelog.

Web views (faust's web server, bound to ``web_host``, 127.0.0.1 unless told otherwise):
``GET /aggregates/?unit=01&period=2025-10[&element=…]`` (the counters held by this worker's
partitions), ``GET /stats/`` (accepted, duplicates, rejected by reason, station_seq gaps).
faust's own views (tables, router, sensors, graph, metrics) are turned off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from mode import CrashingSupervisor

from schemas import KeyRegistry
from schemas.envelope import format_time
from schemas.freshness import CE_TIME_HEADER
from schemas.hierarchy import Hierarchy
from schemas.kafka import faust_broker_urls, faust_credentials
from schemas.topics import RAW
from streams.aggregate import LiveCounters, is_counter_key
from streams.checkpool import key_registry
from streams.config import StreamsConfig
from streams.diskstate import DiskState
from streams.faustio import (
    baseline_offsets,
    broker_committed,
    committed_offsets,
    coordinates,
    disable_gap_acks,
    raw_messages,
    safe_seek,
    seek_back,
)
from streams.offsets import OffsetGuard
from streams.pipeline import BatchOutput, BatchProcessor, OutMessage
from streams.runtime import StreamsRuntime
from streams.state import MemoryState, StateStore

__all__ = ["StreamsRuntime", "build_app", "key_registry"]

logger = logging.getLogger(__name__)


def build_app(
    config: StreamsConfig,
    *,
    hierarchy: Hierarchy | None = None,
    keys: KeyRegistry | None = None,
) -> faust.App:
    """The faust app for ``config`` (no global state, no environment)."""
    runtime = StreamsRuntime(config, hierarchy, keys)
    app = faust.App(
        config.group_id,
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
        # only this module's /aggregates/ and /stats/ are served
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        table_cleanup_interval=3600.0,
    )
    app.tuyen_runtime = runtime  # type: ignore[attr-defined]
    raw_topic = app.topic(
        config.topic(RAW),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.partitions,
    )
    deltas_topic = app.topic(
        config.deltas_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.aggregate_partitions,
        internal=True,
    )
    rocksdb = config.state_store == "rocksdb"
    records = app.Table(
        "records",
        key_type=str,
        partitions=config.partitions,
        # "rocksdb:records", not "rocksdb://": faust treats an empty URL as "no store given"
        store="rocksdb:records" if rocksdb else "memory://",
        options={
            "block_cache_size": config.rocksdb_cache_mib << 20,
            "write_buffer_size": config.rocksdb_write_buffer_mib << 20,
            "max_write_buffer_number": 2,
            "driver": "rocksdict",
        }
        if rocksdb
        else None,
    )
    counters = app.Table(
        "counters",
        key_type=str,
        partitions=config.aggregate_partitions,
    )

    raw_guard = OffsetGuard()
    delta_guard = OffsetGuard()
    guarded = {raw_topic.get_topic_name(), deltas_topic.get_topic_name()}

    last_seen: dict[tuple[str, int], float] = {}
    assigned_at = [time.monotonic()]

    async def _assigned(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        raw_guard.on_assignment()
        delta_guard.on_assignment()
        last_seen.clear()
        assigned_at[0] = time.monotonic()

    async def guard(offsets: OffsetGuard, topic: str, batch: Sequence[Any]) -> list[Any]:
        """The events of ``batch`` to process now (:class:`OffsetGuard`); partitions that
        jumped are sought back. A partition without a baseline gets the group's committed
        offset from the broker first: faust's cache can still be empty after an assignment."""
        committed = committed_offsets(app, topic)
        missing = offsets.without_baseline((e.message.partition for e in batch), committed)
        if missing:
            committed = {**committed, **await baseline_offsets(app, topic, missing)}
        events, seeks = offsets.check(batch, coordinates, committed, time.monotonic())
        if seeks:
            await seek_back(app, topic, seeks)
        return events

    def _seen(topic: str, events: Sequence[Any]) -> None:
        now = time.monotonic()
        for e in events:
            last_seen[(topic, e.message.partition)] = now

    @app.timer(config.stall_check_s)
    async def watchdog() -> None:
        """Resume and re-seek an assigned input partition that has lag but delivers nothing
        for ``stall_after_s`` (faust can leave a partition paused after a rebalance)."""
        now = time.monotonic()
        if now - assigned_at[0] < config.stall_after_s:
            return  # let a fresh assignment recover first
        consumer: Any = app.consumer
        guards = {raw_topic.get_topic_name(): raw_guard, deltas_topic.get_topic_name(): delta_guard}
        tps = [tp for tp in consumer.assignment() if tp.topic in guards]
        if not tps:
            return
        ends = await consumer.highwaters(*tps)
        for tp in tps:
            key = (tp.topic, tp.partition)
            first = last_seen.setdefault(key, now)
            position = guards[tp.topic].expected.get(tp.partition)
            if position is None:
                position = committed_offsets(app, tp.topic).get(tp.partition)
            if position is None and now - first >= config.stall_after_s:
                position = await broker_committed(consumer, tp)
                logger.info(
                    "watchdog topic=%s partition=%d no position seen, broker committed=%s",
                    tp.topic,
                    tp.partition,
                    position,
                )
            end = ends.get(tp)
            if position is None or end is None or end <= position:
                continue
            if now - first < config.stall_after_s:
                continue
            logger.warning(
                "partition stalled topic=%s partition=%d position=%d end=%d: resuming",
                tp.topic,
                tp.partition,
                position,
                end,
            )
            consumer.resume_partitions([tp])
            await safe_seek(consumer, tp, position)
            last_seen[key] = now
            guards[tp.topic].pending[tp.partition] = (position, now)

    app.on_partitions_assigned.connect(_assigned)  # type: ignore[arg-type]

    def store_dict(table: Any) -> dict[str, Any]:
        data = table.data.data
        assert isinstance(data, dict), "the counters table needs the memory:// store"
        return data

    def record_state() -> StateStore:
        if rocksdb:
            store: Any = records.data  # faust.stores.rocksdb.Store
            return DiskState(store._db_for_partition)
        return MemoryState(store_dict(records))

    def track(table: Any, changes: Sequence[tuple[str, Any, int]]) -> None:
        """Tell the memory store which partition each written key belongs to (so a revoked
        partition's keys are dropped; the RocksDB store keeps a database per partition and
        has nothing to track); the changelog itself is written by ``publish``."""
        key_partition = getattr(table.data, "_key_partition", None)
        if key_partition is not None:
            for key, _value, partition in changes:
                key_partition[key] = partition

    # An agent that raises stops the worker (exit status 1) for its supervisor (compose,
    # Kubernetes, `tuyen demo`) to restart, instead of faust restarting the agent in place
    # over a stream it already consumed from (seen: a worker that stayed up doing nothing).
    @app.agent(raw_topic, concurrency=1, name="validate", supervisor_strategy=CrashingSupervisor)
    async def validate(stream: Any) -> Any:
        if runtime.processor is None:
            runtime.processor = BatchProcessor(
                runtime.validator,
                runtime.pseudonymiser,
                topic_prefix=config.topic_prefix,
                aggregate_partitions=config.aggregate_partitions,
                state=record_state(),
                record_topics=config.record_topics,
            )
        processor = runtime.processor
        raw_name = raw_topic.get_topic_name()
        disable_gap_acks(app, guarded)
        changelog = records.changelog_topic.get_topic_name()
        timing: dict[str, float] = dict.fromkeys(
            ("wait_s", "prepare_s", "check_s", "finish_s", "publish_s", "events", "batches"), 0.0
        )

        async def publish(out: BatchOutput) -> None:
            """Outputs, then changelog, then disk state (faust acks the batch's events when
            the next batch is taken, so only after this returned)."""
            await runtime.publish(out.outputs, out.deltas, changelog, out.state)
            processor.state.commit(out.state)
            track(records, out.state)
            runtime.stats["accepted"] += out.accepted
            runtime.stats["duplicates"] += out.duplicates
            for reason, n in out.rejected.items():
                runtime.stats[f"rejected.{reason}"] += n

        ended = last_log = time.perf_counter()
        async for batch in stream.take_events(config.batch_size, within=config.batch_within_s):
            t0 = time.perf_counter()
            timing["wait_s"] += t0 - ended
            _seen(raw_name, batch)
            msgs = raw_messages(await guard(raw_guard, raw_name, batch))
            if not msgs:  # everything held back for a re-fetch
                ended = time.perf_counter()
                yield 0
                continue
            now = datetime.now(UTC)
            t1 = time.perf_counter()
            pool = runtime.check_pool
            if pool is None:
                checked = await runtime.check(msgs, now)
                t2 = time.perf_counter()
                out = processor.finish(msgs, checked, now)
            else:
                # stage 2 of chunk k (here) overlaps stage 1 of chunk k+1 (check processes)
                out = BatchOutput()
                finish_s = 0.0
                async for part, verdicts in pool.chunks(msgs, now, max(256, -(-len(msgs) // 4))):
                    f0 = time.perf_counter()
                    processor.finish(part, verdicts, now, into=out, last=False)
                    finish_s += time.perf_counter() - f0
                f0 = time.perf_counter()
                processor.finish((), (), now, into=out, last=True)
                t2 = f0 - finish_s
            t3 = time.perf_counter()
            await publish(out)
            ended = time.perf_counter()
            timing["prepare_s"] += t1 - t0
            timing["check_s"] += t2 - t1
            timing["finish_s"] += t3 - t2
            timing["publish_s"] += ended - t3
            timing["events"] += len(msgs)
            timing["batches"] += 1
            if ended - last_log >= 10.0:
                last_log = ended
                logger.info(
                    "validate progress %s", " ".join(f"{k}={v:.2f}" for k, v in timing.items())
                )
            if out.rejected:
                logger.info(
                    "batch events=%d accepted=%d duplicates=%d rejected=%s",
                    len(msgs),
                    out.accepted,
                    out.duplicates,
                    dict(out.rejected),
                )
            yield len(msgs)

    @app.agent(deltas_topic, concurrency=1, name="count", supervisor_strategy=CrashingSupervisor)
    async def count(stream: Any) -> Any:
        if runtime.counters is None:
            runtime.counters = LiveCounters(store_dict(counters))
        live = runtime.counters
        deltas_name = deltas_topic.get_topic_name()
        disable_gap_acks(app, guarded)
        async for batch in stream.take_events(config.batch_size, within=config.batch_within_s):
            _seen(deltas_name, batch)
            events = await guard(delta_guard, deltas_name, batch)
            changed: dict[str, tuple[Any, int]] = {}
            for e in events:
                q = e.message.partition
                for key, value in live.apply(q, orjson.loads(e.message.value)).items():
                    changed[key] = (value, q)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            outputs = []
            for key, (value, _q) in changed.items():
                if not is_counter_key(key):
                    continue
                unit, period, element = key.split("|", 2)
                doc = {
                    "unit": unit,
                    "tier": value[0],
                    "period": period,
                    "element": element,
                    "value": value[1],
                    "updated_at": now,
                }
                headers: list[tuple[str, bytes]] = []
                event_ms = live.event_ms.pop(key, None)
                if event_ms is not None:  # the newest event this value reflects (freshness)
                    event_time = format_time(datetime.fromtimestamp(event_ms / 1000, UTC))
                    doc["event_time"] = event_time
                    headers.append((CE_TIME_HEADER, event_time.encode()))
                outputs.append(
                    OutMessage(runtime.aggregates_topic, key.encode(), orjson.dumps(doc), headers)
                )
            state = [(k, orjson.dumps(v), q) for k, (v, q) in changed.items()]
            await runtime.publish(outputs, [], counters.changelog_topic.get_topic_name(), state)
            track(counters, state)
            runtime.stats["aggregates.updates"] += len(outputs)
            yield len(events)

    @app.page("/aggregates/")
    class AggregatesView(View):
        async def get(self, request: Request) -> Response:
            unit = request.query.get("unit")
            period = request.query.get("period")
            element = request.query.get("element")
            rows = []
            for key, value in (runtime.counters.data if runtime.counters else {}).items():
                if not is_counter_key(key):
                    continue
                u, p, el = key.split("|", 2)
                if (unit and u != unit) or (period and p != period) or (element and el != element):
                    continue
                rows.append(
                    {"unit": u, "tier": value[0], "period": p, "element": el, "value": value[1]}
                )
            rows.sort(key=lambda r: (r["unit"], r["period"], r["element"]))
            return self.json({"aggregates": rows, "scope": "partitions held by this worker"})

    @app.page("/stats/")
    class StatsView(View):
        async def get(self, request: Request) -> Response:
            gaps = runtime.processor.seq.report() if runtime.processor else {}
            return self.json({"counts": dict(runtime.stats), "station_seq_gaps": gaps})

    return app
