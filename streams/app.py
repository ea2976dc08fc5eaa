"""The faust app: :func:`build_app` wires the shell's objects together; nothing else here.

Agents (``concurrency=1``, at-least-once; faust commits offsets only of acked events):

- ``validate``: raw topic → :class:`~streams.agents.ValidateAgent` (guarded input, stages 1
  and 2, then the checkpoint: outputs → changelog → disk → ack, :mod:`streams.checkpoint`);
- ``count``: aggregate-delta topic → :class:`~streams.agents.CountAgent` (live counters, then
  the checkpoint: ``aggregates.live`` → changelog → ack).

A :class:`~streams.watchdog.PartitionWatchdog` timer resumes input partitions that stall.
Every faust detail is in :mod:`streams.faustio`; what the agents share is one
:class:`~streams.runtime.StreamsRuntime`.

Web views (faust's web server, bound to ``web_host``, 127.0.0.1 unless told otherwise):
``GET /aggregates/?unit=01&period=2025-10[&element=…]`` (the counters held by this worker's
partitions), ``GET /stats/`` (accepted, duplicates, rejected by reason, station_seq gaps).
faust's own views (tables, router, sensors, graph, metrics) are turned off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from mode import CrashingSupervisor

from schemas import KeyRegistry
from schemas.hierarchy import Hierarchy
from schemas.topics import RAW
from streams import faustio
from streams.agents import CountAgent, ValidateAgent
from streams.aggregate import is_counter_key
from streams.collector import tune_collector
from streams.config import StreamsConfig
from streams.offsets import GuardedInput
from streams.runtime import StreamsRuntime
from streams.watchdog import PartitionWatchdog

__all__ = ["build_app", "run_worker"]

logger = logging.getLogger(__name__)


def build_app(
    config: StreamsConfig,
    *,
    hierarchy: Hierarchy | None = None,
    keys: KeyRegistry | None = None,
) -> faust.App:
    """The faust app for ``config`` (no global state, no environment); its runtime is
    :func:`runtime_of`."""
    app = faustio.new_app(config)
    raw = faustio.input_topic(app, config.topic(RAW), config.partitions)
    deltas = faustio.input_topic(
        app, config.deltas_topic, config.aggregate_partitions, internal=True
    )
    records = faustio.records_table(app, config)
    counters = faustio.counters_table(app, config)
    runtime = StreamsRuntime(
        config, hierarchy, keys, state=records.record_state(), counters=counters.data()
    )
    app.tuyen_runtime = runtime  # type: ignore[attr-defined]
    consumer = faustio.FaustConsumer(app)
    raw_in = GuardedInput(raw.get_topic_name(), consumer, faustio.coordinates)
    deltas_in = GuardedInput(deltas.get_topic_name(), consumer, faustio.coordinates)
    guarded = {g.topic: g.committable for g in (raw_in, deltas_in)}
    watchdog = PartitionWatchdog(
        consumer, {g.topic: g for g in (raw_in, deltas_in)}, stall_after_s=config.stall_after_s
    )
    faustio.on_assigned(app, watchdog.on_assignment)
    app.timer(config.stall_check_s)(watchdog.tick)

    def write_records(changes: list[tuple[str, bytes, int]]) -> None:
        runtime.processor.state.commit(changes)
        records.track(changes)

    # An agent that raises stops the worker (exit status 1) for its supervisor (compose,
    # Kubernetes, `tuyen demo`) to restart, instead of faust restarting the agent in place
    # over a stream it already consumed from (seen: a worker that stayed up doing nothing).
    @app.agent(raw, concurrency=1, name="validate", supervisor_strategy=CrashingSupervisor)
    async def validate(stream: Any) -> Any:
        faustio.commit_processed_only(app, guarded)
        faustio.fast_delivery(app)
        ack = raw_in.acking(faustio.acker(stream))
        checkpoint = runtime.checkpoint(records.changelog, write_records, ack, records=True)
        # overlapped: a checkpoint that fails while the agent waits for a batch wakes it
        checkpoint.on_failure = faustio.interrupter(stream)
        overlap = config.overlap_checkpoint
        agent = ValidateAgent(runtime, raw_in, checkpoint, faustio.raw_messages, overlap=overlap)
        try:
            async for batch in faustio.batches(stream, config.batch_size, config.batch_within_s):
                yield await agent.handle(batch)
        finally:  # the checkpoint in flight finishes (or raises) before the agent ends
            await agent.settle()

    @app.agent(deltas, concurrency=1, name="count", supervisor_strategy=CrashingSupervisor)
    async def count(stream: Any) -> Any:
        faustio.commit_processed_only(app, guarded)
        ack = deltas_in.acking(faustio.acker(stream))
        checkpoint = runtime.checkpoint(counters.changelog, counters.track, ack, records=False)
        agent = CountAgent(runtime, deltas_in, checkpoint, _delta_message)
        async for batch in faustio.batches(stream, config.batch_size, config.batch_within_s):
            yield await agent.handle(batch)

    _views(app, runtime)
    return app


def runtime_of(app: faust.App) -> StreamsRuntime:
    """The :class:`StreamsRuntime` :func:`build_app` built for ``app``."""
    runtime = app.tuyen_runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, StreamsRuntime)
    return runtime


def run_worker(config: StreamsConfig, log_level: str = "INFO") -> None:
    """Build the app and run it as a worker in this process until SIGTERM/SIGINT (the batch
    in flight is finished and committed) or a failed agent (exit status 1); the runtime's
    check processes and publisher are closed either way."""
    app = build_app(config)
    tune_collector()
    faustio.run_app(app, log_level, runtime_of(app).close)


def _delta_message(event: Any) -> tuple[int, Mapping[str, Any]]:
    """(delta partition, delta message) of an aggregate-delta event."""
    message: Mapping[str, Any] = orjson.loads(event.message.value)
    return event.message.partition, message


def _views(app: faust.App, runtime: StreamsRuntime) -> None:
    """``/aggregates/`` and ``/stats/`` (faust's own views are off: ``faustio.new_app``)."""

    @app.page("/aggregates/")
    class AggregatesView(View):
        async def get(self, request: Request) -> Response:
            unit = request.query.get("unit")
            period = request.query.get("period")
            element = request.query.get("element")
            rows = []
            for key, value in runtime.counters.data.items():
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
            gaps = runtime.processor.seq.report()
            return self.json({"counts": dict(runtime.stats), "station_seq_gaps": gaps})
