"""A faust agent that receives the raw topic in batches and does nothing with it: the ceiling
any faust worker on this machine can reach (``bench_streams`` prints the stream worker beside
it). Same settings as the stream worker's raw agent (``stream.take_events``, batch 2000,
concurrency 1, raw serializers, commits every batch).

``python -m benchmarks.faust_bare --bootstrap B --topic T --count N`` prints
``rate=<events/s> cpu_us=<CPU µs per event>`` once N events were received (both from the
first batch on, so the group join is excluded) and exits. ``--fast-delivery``: with the
worker's delivery of fetched messages (``streams.faustio.fast_delivery``) instead of faust's.
``--fast-take``: the worker's input topic (``streams.faustio.input_topic``: events built
directly) and batches (``streams.faustio.batches``: taken from the channel's queue in one go),
acked as the worker acks them (``streams.faustio.acker``), instead of ``take_events``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import faust

from deploy.settings import Settings
from schemas.kafka import KafkaConnection, faust_broker_urls, faust_credentials
from streams.faustio import acker, batches, fast_delivery, input_topic


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    t = os.times()
    return t.user + t.system


def build(
    kafka: KafkaConnection,
    topic: str,
    count: int,
    group: str,
    datadir: str,
    *,
    fast: bool = False,
    fast_take: bool = False,
) -> faust.App:
    app = faust.App(
        group,
        broker=faust_broker_urls(kafka),
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        datadir=datadir,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        broker_commit_every=2000,
        broker_commit_interval=1.0,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        stream_buffer_maxsize=4096,
    )
    if fast_take:
        source = input_topic(app, topic, app.conf.topic_partitions)
    else:
        source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "bytes": 0, "first": 0}
    started: list[float] = []  # [wall clock, CPU seconds] at the first batch

    @app.agent(source, concurrency=1, name="bare")
    async def bare(stream: Any) -> Any:
        if fast:
            fast_delivery(app)
        ack = acker(stream)
        taken = batches(stream, 2000, 0.25) if fast_take else stream.take_events(2000, within=0.25)
        async for batch in taken:
            if not started:
                started.extend((time.perf_counter(), _cpu_s()))
                seen["first"] = len(batch)
            seen["n"] += len(batch)
            seen["bytes"] += sum(len(e.message.value or b"") for e in batch)
            if seen["n"] >= count:
                counted = max(1, seen["n"] - seen["first"])
                rate = counted / max(1e-9, time.perf_counter() - started[0])
                cpu_us = (_cpu_s() - started[1]) / counted * 1e6
                print(f"rate={rate:.1f} cpu_us={cpu_us:.1f}", flush=True)
                os._exit(0)
            if fast_take:
                await ack(batch)
            yield len(batch)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--group", default=f"bench-faust-bare-{os.getpid()}")
    parser.add_argument("--datadir", default=f"/tmp/bench-faust-bare-{os.getpid()}")
    parser.add_argument("--fast-delivery", action="store_true")
    parser.add_argument("--fast-take", action="store_true")
    args = parser.parse_args()
    kafka = Settings.load().kafka_connection(args.bootstrap)  # with TUYEN_KAFKA_* security
    app = build(
        kafka,
        args.topic,
        args.count,
        args.group,
        args.datadir,
        fast=args.fast_delivery,
        fast_take=args.fast_take,
    )
    from faust.worker import Worker

    Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
