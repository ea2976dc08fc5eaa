"""End to end: publish → validate/route (signatures on) → all three tier stores.

Figures, each beside baselines measured in the same run:

- **throughput**: simulated events published as fast as possible until the stream worker's
  group and the three tier sinks' have committed the last of them, so every valid event is
  durable in the district, province and national stores (the CPU per event is taken once
  every group, the aggregates sink's included, is done); beside a raw
  confluent-kafka produce of the same bytes and a raw consume→produce passthrough, with the
  CPU per event of the pipeline's processes (workers, check processes, sinks; not the
  broker), and again with two stream workers in the group beside one.
- **freshness** at a steady 1,000 events/s: for every event, the time from its publication
  (when this process handed it to the producer) until it is readable in every tier store it
  reaches (the national store, under its own keyed event id, takes only allow-listed record
  types; the stores are polled every ~0.05 s); p50/p95/p99 beside the raw broker round trip
  (produce → consume) of the same messages. The sinks and the worker run at their defaults;
  again with the record-level sinks flushing every ``FAST_FLUSH_S`` (the aggregates sink at
  its own default; with a baseline checkout, every sink at ``FAST_FLUSH_S``); and again at
  the documented low-latency setting (the worker's batch window ``LOW_LATENCY_WITHIN_S``,
  the record sinks flushing every ``LOW_LATENCY_FLUSH_S``, the aggregates sink at its own
  default), its burst (its rate and CPU per event beside the defaults') and its steady run
  each on a new pipeline, and that steady run again with each record-tier sink in a
  process of its own (``APART``, at niceness ``APART_NICE``) beside it. Beside each:
  the sinks' own share of the CPU per event, and the Parquet files the sinks wrote (parts
  and rewrites included) and left at rest. Each steady run's freshness is also cut into hops
  at the broker timestamps (``HOPS``): publication → the raw topic (its LogAppendTime), →
  the last of the event's tier-topic messages (the worker's CreateTime, when it produced
  them), → readable in every store, that last hop cut again at the file's mtime; p50/p95 of
  each beside the broker round trip, with each sink's own hops (``sinks.metrics.SinkHops``:
  consumed, flush wait, write, commit) and the time one poll of the stores takes.

``TUYEN_BENCH_E2E_BASELINE=/a/checkout`` (e.g. ``main``'s) runs the same steady runs and the
burst with that checkout's code (its directory first on the services' ``PYTHONPATH``, this
environment's packages), in the same run, beside this tree's; and the segment writer alone
(``benchmarks/segment_feed.py``: rows fed as at a steady rate, a flush every 2,000 rows, the
segments open), this tree's beside that checkout's.

The pipeline is the real one: ``tuyen streams worker`` and ``tuyen sink`` processes.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Producer

from benchmarks.bench_streams import _children, _cpu_s, _passthrough
from benchmarks.framework import BenchContext, BenchResult, Measurement
from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.simulator import simulate
from schemas import KafkaMessage
from schemas.dlq import header_value
from schemas.kafka import KafkaConnection, consumer, producer
from schemas.partition import PARTITIONER
from schemas.topics import (
    RAW,
    TIER_DISTRICT,
    TIER_NATIONAL,
    TIER_PROVINCE,
    topic_name,
    topic_specs,
)
from sinks.config import FLUSH_INTERVAL_S
from streams.national import national_event_id
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser

PARTITIONS = 6
FAST_FLUSH_S = 0.5
#: the documented low-latency setting (docs/scale.md §5 "Freshness, hop by hop"): the
#: worker's batch window ``LOW_LATENCY_WITHIN_S`` (``tuyen streams worker --batch-within``)
#: and the record sinks flushing every ``LOW_LATENCY_FLUSH_S`` (``tuyen sink
#: --flush-interval``, the aggregates sink at its own default); measured as its own run (a
#: burst and the steady rate)
LOW_LATENCY_WITHIN_S = 0.1
LOW_LATENCY_FLUSH_S = 0.25
#: the same setting's steady run again with each record-tier sink in a process of its own
#: (``Pipeline.sink_split``; `tuyen sink` runs the sinks it is given as threads of one
#: process, one GIL), as the compose and Kubernetes deployments run them, at niceness
#: ``APART_NICE`` (``Pipeline.sink_nice``: on the two cores they share, the worker first)
APART = tuple((t,) for t in ("district", "province", "national"))
APART_NICE = 10
STEADY_RATE = 1000  # events/s of the freshness runs
TIERS = ("district", "province", "national")


def _events(seed: int, days: int, scale: float, province: str) -> list[KafkaMessage]:
    end = date.today() - timedelta(days=1)
    cfg = SimulationConfig(
        seed=seed,
        provinces=(province,),
        start=(end - timedelta(days=days - 1)).isoformat(),
        days=days,
        scale=scale,
        keep_truth=False,
    )
    return [ev.message for ev in simulate(cfg).events]


def _producer(kafka: KafkaConnection) -> Producer:
    return producer(
        kafka,
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "partitioner": PARTITIONER,
        },
    )


def _produce(p: Producer, topic: str, msgs: list[KafkaMessage]) -> None:
    for m in msgs:
        while True:
            try:
                p.produce(topic, m.value, m.key, headers=m.headers)  # type: ignore[arg-type]
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)


def _raw_produce_rate(kafka: KafkaConnection, topic: str, msgs: list[KafkaMessage]) -> float:
    p = _producer(kafka)
    started = time.perf_counter()
    _produce(p, topic, msgs)
    p.flush(120)
    return len(msgs) / (time.perf_counter() - started)


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    if len(samples) < 2:
        v = samples[0] if samples else 0.0
        return v, v, v
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[94], q[98]


def _visible(root: Path, tier: str, cache: dict[Path, float]) -> list[tuple[float, list[str]]]:
    """The Parquet files of a tier store new or rewritten since ``cache`` (path → mtime) was
    last refreshed: (their mtime, their event ids). Only those are read (sinks rewrite an
    open segment's parts under the same names as they grow)."""
    changed = []
    for path in (root / tier).rglob("*.parquet"):
        try:
            mtime = path.stat().st_mtime
            if cache.get(path) == mtime:
                continue
            table = pq.read_table(path, columns=["event_id"])
        except (OSError, pa.ArrowInvalid):
            continue  # replaced while we looked: read it next time
        cache[path] = mtime
        changed.append((mtime, [str(e) for e in table.column("event_id").to_pylist()]))
    return changed


def _tier_ids(msgs: list[KafkaMessage]) -> dict[str, tuple[str, str]]:
    """Event id → (its id in the record-level stores, its id in the national store): the
    national tier keys its own event ids (``streams.national.national_event_id``, with the
    development pseudonym key the pipeline runs with here)."""
    p = Pseudonymiser(decode_pseudonym_key(DEV_PSEUDONYM_KEY, allow_development=True))
    out: dict[str, tuple[str, str]] = {}
    for m in msgs:
        for k, v in m.headers:
            if k == "ce_id":
                eid = v.decode() if isinstance(v, bytes) else str(v)
                out[eid] = (eid, national_event_id(eid, p))
    return out


def _freshness(
    kafka: KafkaConnection,
    raw: str,
    root: Path,
    msgs: list[KafkaMessage],
    rate: int,
    remaining: Callable[[], dict[str, int]],
    polls: list[tuple[float, int]],
) -> dict[str, tuple[float, float, float]]:
    """Publish ``msgs`` at ``rate``/s; for each event (by its ``ce_id``): when it was
    published, when it was readable in every tier store it reaches (the national tier does
    not take every record type; rejected events reach none and are not counted), and the
    mtime of the file that made it so (written). ``polls``: each poll of the stores, (its
    seconds, the Parquet files in the stores)."""
    p = _producer(kafka)
    ids = _tier_ids(msgs)
    caches: dict[str, dict[Path, float]] = {t: {} for t in TIERS}
    #: tier → event id → (first poll that saw it, the mtime of the file it was in)
    first_seen: dict[str, dict[str, tuple[float, float]]] = {t: {} for t in TIERS}
    sent_at: dict[str, float] = {}
    eids = list(ids)  # in publication order (one ce_id per message)
    started = time.monotonic()
    sent = 0
    chunk = max(1, rate // 20)

    def look() -> None:
        now = time.time()
        for tier in TIERS:
            seen = first_seen[tier]
            for mtime, found in _visible(root, tier, caches[tier]):
                for eid in found:
                    seen.setdefault(eid, (now, mtime))
        polls.append((time.time() - now, sum(len(c) for c in caches.values())))

    deadline = started + len(msgs) / rate + 120
    while sent < len(msgs) and time.monotonic() < deadline:
        due = min(len(msgs), int((time.monotonic() - started) * rate))
        if sent < due:
            upto = min(due, sent + chunk * 4)
            now = time.time()
            for eid in eids[sent:upto]:
                sent_at[eid] = now
            _produce(p, raw, msgs[sent:upto])
            sent = upto
        p.poll(0)
        look()
        time.sleep(0.05)
    p.flush(30)
    settled = time.monotonic() + 300
    checked = 0.0
    while time.monotonic() < settled:  # keep looking until every group has committed all
        look()
        if time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            if not any(remaining().values()):
                break
        time.sleep(0.05)
    look()
    out: dict[str, tuple[float, float, float]] = {}
    for eid, (record_id, national_id) in ids.items():
        times = [first_seen[t].get(record_id) for t in ("district", "province")]
        times.append(first_seen["national"].get(national_id))
        found = [t for t in times if t is not None]
        if found and eid in sent_at:
            last = max(found)  # the store it reached last: when polled, its file's mtime
            out[eid] = (sent_at[eid], last[0], last[1])
    return out


def _broker_times(kafka: KafkaConnection, topic: str) -> dict[str, float]:
    """``ce_id`` → the broker timestamp (s) of each message of ``topic``, read from the start
    to the end offsets: the raw topic's is the broker's LogAppendTime, a tier topic's the
    worker's CreateTime (when it produced the message; the tier topics keep CreateTime)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    c = consumer(kafka, {"group.id": f"{topic}-hops", "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pos = {p: 0 for p in parts}
    out: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
        for m in c.consume(10_000, timeout=0.5):
            if m.error() is not None:
                continue
            pos[m.partition() or 0] = (m.offset() or 0) + 1
            eid = header_value(cast(Any, m.headers()), "ce_id")
            if eid is not None:
                out.setdefault(eid, m.timestamp()[1] / 1000)
    c.close()
    return out


HOPS = (
    "publish → raw topic",
    "raw → tier topic (worker)",
    "tier topic → stores (sinks)",
    "tier topic → file written (sinks)",
    "file written → seen by the poll",
)


def _hops(
    kafka: KafkaConnection,
    prefix: str,
    seen: dict[str, tuple[float, float, float]],
    ids: dict[str, tuple[str, str]],
) -> dict[str, list[float]]:
    """Each event's freshness cut at the broker timestamps: publication → the raw topic
    (LogAppendTime), → the last of its tier-topic messages (the worker's CreateTime), →
    readable in every store (the stores' poll; the first three hops add up to the
    freshness). The last hop cut again at the mtime of the file that made the event
    readable in the store it reached last: → written (the sink's consume, flush wait and
    write), → seen by the poll (the fsyncs, the rename and the poll's own delay)."""
    raw = _broker_times(kafka, topic_name(RAW, prefix))
    tiers = [
        _broker_times(kafka, topic_name(t, prefix))
        for t in (TIER_DISTRICT, TIER_PROVINCE, TIER_NATIONAL)
    ]
    out: dict[str, list[float]] = {h: [] for h in HOPS}
    for eid, (sent, readable, written) in seen.items():
        record_id, national_id = ids[eid]
        stamped = [tiers[0].get(record_id), tiers[1].get(record_id), tiers[2].get(national_id)]
        tier_ts = [t for t in stamped if t is not None]
        if eid not in raw or not tier_ts:
            continue
        tier = max(tier_ts)
        cuts = (raw[eid] - sent, tier - raw[eid], readable - tier, written - tier)
        for hop, dt in zip(HOPS, (*cuts, readable - written), strict=True):
            out[hop].append(dt)
    return out


def _round_trip(
    kafka: KafkaConnection, topic: str, msgs: list[KafkaMessage], rate: int
) -> list[float]:
    """Raw broker latency at the same rate: produce → consumed by a plain consumer."""
    c = consumer(
        kafka,
        {
            "group.id": f"{topic}-rt",
            "auto.offset.reset": "latest",
            "session.timeout.ms": 6000,
        },
    )
    c.subscribe([topic])
    while not c.assignment():
        c.poll(0.2)
    p = _producer(kafka)
    lat: list[float] = []
    started = time.monotonic()
    sent = 0
    while len(lat) < len(msgs) and time.monotonic() - started < len(msgs) / rate + 60:
        due = min(len(msgs), int((time.monotonic() - started) * rate))
        if sent < due:
            _produce(p, topic, msgs[sent:due])
            sent = due
        for m in c.consume(1000, timeout=0.05):
            if m.error() is None:
                lat.append(time.time() - m.timestamp()[1] / 1000)
    c.close()
    return lat


def _pipeline_cpu_s(pipeline: Pipeline) -> tuple[float, float]:
    """CPU seconds used so far by the pipeline's processes — all (workers with their check
    processes, and sinks), and the sinks alone; the broker and this process are not
    counted."""
    total = sinks = 0.0
    for name, svc in pipeline.services.items():
        if svc.proc is None:
            continue
        pid = svc.proc.pid
        cpu = _cpu_s(pid) + sum(_cpu_s(c) for c in _children(pid))
        total += cpu
        if not name.startswith("worker"):
            sinks += cpu
    return total, sinks


_STOPPED = re.compile(r"sink stopped sink=(\w+) messages=\d+ files=(\d+)")


def _files_written(log_dir: Path) -> int:
    """Parquet files the sinks wrote (every flush's files), from their stop lines."""
    count = 0
    for log in log_dir.glob("sink*.log"):
        count += sum(int(m.group(2)) for m in _STOPPED.finditer(log.read_text(errors="replace")))
    return count


_SINK_HOPS = re.compile(r"sink hops sink=(\w+) batches=(\d+) (.*)")


def _sink_hops(log_dir: Path) -> dict[str, dict[str, float]]:
    """Each sink's own hops (``sinks.metrics.SinkHops``: p50/p95 per consumed batch of the
    whole run), from their stop lines; sink → ``{"batches": n, "consumed_p50": s, …}``."""
    out: dict[str, dict[str, float]] = {}
    for log in log_dir.glob("sink*.log"):
        for m in _SINK_HOPS.finditer(log.read_text(errors="replace")):
            fields = dict(kv.split("=", 1) for kv in m.group(3).split())
            out[m.group(1)] = {
                "batches": int(m.group(2)),
                **{k: float(v) for k, v in fields.items()},
            }
    return out


@dataclass
class _Run:
    rate: float = 0.0  # the burst's events/s, publish → committed in every tier store
    cpu_us: float = 0.0  # the pipeline's CPU µs per event of the burst
    sink_cpu_us: float = 0.0  # the sinks' part of it
    fresh: list[float] = field(default_factory=list)  # each steady event's seconds
    hops: dict[str, list[float]] = field(default_factory=dict)  # the same, cut in HOPS
    steady_cpu_us: float = 0.0  # the pipeline's CPU µs per event while steady
    steady_sink_cpu_us: float = 0.0  # the sinks' part of it
    files_written: int = 0  # by the sinks, the whole run
    files_at_rest: int = 0  # Parquet files in the store when the run ends
    polls: list[tuple[float, int]] = field(default_factory=list)  # (seconds, files) per poll
    sink_hops: dict[str, dict[str, float]] = field(default_factory=dict)  # _sink_hops


def _pipeline_run(
    ctx: BenchContext,
    burst: list[KafkaMessage],
    steady: list[KafkaMessage],
    workers: int = 1,
    sink_args: tuple[str, ...] = (),
    worker_args: tuple[str, ...] = (),
    rate: int = STEADY_RATE,
    checkout: str | None = None,
    sink_split: tuple[tuple[str, ...], ...] = (),
    sink_nice: int = 0,
) -> _Run:
    """A fresh pipeline (``workers`` stream workers, the sinks at their defaults unless
    ``sink_args``): if ``burst``, its end-to-end rate and the CPU per event of the pipeline's
    processes; then, if ``steady``, the freshness of each steady event published at 1,000
    events/s and the CPU per event meanwhile. ``checkout``: the services run that
    directory's code; ``sink_split``: these groups of sinks each in a process of their own,
    ``sink_nice`` their niceness."""
    prefix = ctx.unique(f"e2e-w{workers}") + "."
    apply_topics(ctx.kafka, topic_specs(prefix, PARTITIONS, record_topics="single"))
    raw = topic_name(RAW, prefix)
    root = ctx.workdir / f"{prefix}store"
    pipeline = Pipeline(
        kafka=ctx.kafka,
        prefix=prefix,
        store_root=root,
        log_dir=ctx.workdir / f"{prefix}logs",
        home=ctx.workdir / f"{prefix}home",
        workers=workers,
        sink_args=sink_args,
        sink_split=sink_split,
        sink_nice=sink_nice,
        development=True,
        worker_args=("--partitions", str(PARTITIONS), *worker_args),
        # INFO: the sinks' stop lines count the files they wrote (_files_written)
        extra_env={"TUYEN_LOG_LEVEL": "INFO", **({"PYTHONPATH": checkout} if checkout else {})},
    )
    pipeline.start()
    try:
        pipeline.wait_caught_up(120, settle_s=1)  # groups joined, nothing to do yet
        run = _Run()
        if burst:
            cpu_before, sinks_before = _pipeline_cpu_s(pipeline)
            started = time.perf_counter()
            p = _producer(ctx.kafka)
            _produce(p, raw, burst)
            p.flush(120)
            # the rate: until every event is durable in the three tier stores (the worker's
            # and the tier sinks' groups); the CPU: until every group is done (the aggregates
            # sink flushes every 10 s: its wait is freshness of the counters, not throughput)
            pipeline.wait_caught_up(1800, settle_s=0.5, sinks=TIERS)
            run.rate = len(burst) / (time.perf_counter() - started - 0.5)
            pipeline.wait_caught_up(1800, settle_s=0.5)
            cpu, sinks = _pipeline_cpu_s(pipeline)
            run.cpu_us = (cpu - cpu_before) / len(burst) * 1e6
            run.sink_cpu_us = (sinks - sinks_before) / len(burst) * 1e6
        if steady:
            cpu_before, sinks_before = _pipeline_cpu_s(pipeline)
            seen = _freshness(ctx.kafka, raw, root, steady, rate, pipeline.remaining, run.polls)
            cpu, sinks = _pipeline_cpu_s(pipeline)
            run.fresh = [readable - sent for sent, readable, _ in seen.values()]
            run.hops = _hops(ctx.kafka, prefix, seen, _tier_ids(steady))
            run.steady_cpu_us = (cpu - cpu_before) / len(steady) * 1e6
            run.steady_sink_cpu_us = (sinks - sinks_before) / len(steady) * 1e6
    finally:
        pipeline.stop()
    run.files_written = _files_written(ctx.workdir / f"{prefix}logs")
    run.sink_hops = _sink_hops(ctx.workdir / f"{prefix}logs")
    run.files_at_rest = sum(1 for _ in root.rglob("*.parquet"))
    return run


def run(ctx: BenchContext) -> list[BenchResult]:
    burst = _events(seed=11, days=20, scale=max(0.01, 0.06 * ctx.scale), province="12")
    # 30 s at 1,000 events/s at --scale 0.5: long enough for open segments to grow (a flush's
    # cost may grow with its segment)
    steady_n = ctx.n(60_000)
    # another province's stations: the burst's records (same stations, same record ids)
    # would make the steady run's versions stale, and the worker would reject them
    steady = _events(seed=12, days=4, scale=0.05, province="11")[:steady_n]
    one = _pipeline_run(ctx, burst, steady)
    two = _pipeline_run(ctx, burst, [], workers=2)
    # the sinks' flush interval is the freshness knob, and a flush rewrites the open segment:
    # the same steady run with half-second flushes, beside the default's
    fast_args = ("--flush-interval", str(FAST_FLUSH_S))
    # (the aggregates sink keeps its own default: "readable in every tier store" is the
    # district, province and national stores)
    own_aggregates = ("--aggregates-flush-interval", str(FLUSH_INTERVAL_S["aggregates"]))
    fast = _pipeline_run(ctx, [], steady, sink_args=fast_args + own_aggregates)
    # the low-latency setting: its burst and its steady run each on a new pipeline (a steady
    # run after a burst rewrites, at every flush, the files of each directory the burst's
    # rows put in the block being filled: docs/scale.md §5), and the steady run again apart
    low_worker = ("--batch-within", str(LOW_LATENCY_WITHIN_S))
    low_sinks = ("--flush-interval", str(LOW_LATENCY_FLUSH_S), *own_aggregates)
    low_burst = _pipeline_run(ctx, burst, [], worker_args=low_worker, sink_args=low_sinks)
    low = _pipeline_run(ctx, [], steady, worker_args=low_worker, sink_args=low_sinks)
    apart = _pipeline_run(
        ctx,
        [],
        steady,
        worker_args=low_worker,
        sink_args=low_sinks,
        sink_split=APART,
        sink_nice=APART_NICE,
    )
    checkout = os.environ.get("TUYEN_BENCH_E2E_BASELINE")
    base = base_fast = None
    if checkout:  # the same runs with another checkout's code, e.g. main's
        base = _pipeline_run(ctx, burst, steady, checkout=checkout)
        base_fast = _pipeline_run(ctx, [], steady, sink_args=fast_args, checkout=checkout)
    e2e_rate, fresh = one.rate, one.fresh
    produce_rate = _raw_produce_rate(ctx.kafka, ctx.unique("e2e-raw"), burst)
    copy_src = ctx.unique("e2e-pass-src")
    apply_topics(ctx.kafka, topic_specs(copy_src + ".", PARTITIONS, record_topics="single")[:1])
    src = topic_name(RAW, copy_src + ".")
    p = _producer(ctx.kafka)
    _produce(p, src, burst)
    p.flush(120)
    passthrough = _passthrough(ctx.kafka, src, ctx.unique("e2e-pass-dst"), len(burst))
    rt_prefix = ctx.unique("e2e-rt") + "."
    apply_topics(ctx.kafka, topic_specs(rt_prefix, PARTITIONS, record_topics="single")[:1])
    rt_topic = topic_name(RAW, rt_prefix)
    rt = _round_trip(ctx.kafka, rt_topic, steady[: min(len(steady), 5000)], 1000)
    f50, f95, f99 = _percentiles(fresh)
    r50, r95, r99 = _percentiles(rt)
    unit = "events/s"
    results = [
        BenchResult(
            "end to end: publish → 3 tier stores (signatures on)",
            Measurement(e2e_rate, unit),
            "raw confluent-kafka produce",
            Measurement(produce_rate, unit),
            extra={
                "events": len(burst),
                "cpu_us_per_event_pipeline": round(one.cpu_us),
                "cpu_us_per_event_sinks": round(one.sink_cpu_us),
            },
        ),
        BenchResult(
            "end to end, 2 stream workers (one per core)",
            Measurement(two.rate, unit),
            "same with 1 worker",
            Measurement(e2e_rate, unit),
            extra={"cpu_us_per_event_pipeline": round(two.cpu_us)},
        ),
        BenchResult(
            "end to end: publish → 3 tier stores (signatures on)",
            Measurement(e2e_rate, unit),
            "raw consume→produce passthrough",
            Measurement(passthrough, unit),
        ),
        BenchResult(
            "freshness p50 at 1,000 ev/s (publish → all 3 stores)",
            Measurement(f50, "s"),
            "raw broker round trip p50",
            Measurement(r50, "s"),
            higher_is_better=False,
            extra={"events": len(fresh), **_steady_extra(one)},
        ),
        BenchResult(
            "freshness p95 at 1,000 ev/s",
            Measurement(f95, "s"),
            "raw broker round trip p95",
            Measurement(r95, "s"),
            higher_is_better=False,
        ),
        BenchResult(
            "freshness p99 at 1,000 ev/s",
            Measurement(f99, "s"),
            "raw broker round trip p99",
            Measurement(r99, "s"),
            higher_is_better=False,
        ),
        BenchResult(
            f"freshness p95 at 1,000 ev/s, sinks flushing every {FAST_FLUSH_S} s",
            Measurement(_percentiles(fast.fresh)[1], "s"),
            "raw broker round trip p95",
            Measurement(r95, "s"),
            higher_is_better=False,
            extra={
                "events": len(fast.fresh),
                "p50_s": round(_percentiles(fast.fresh)[0], 3),
                **_steady_extra(fast),
            },
        ),
    ]
    low_label = (
        f"worker batch window {LOW_LATENCY_WITHIN_S} s, record sinks flushing every "
        f"{LOW_LATENCY_FLUSH_S} s"
    )
    results += [
        _steady_result(
            f"freshness p95 at 1,000 ev/s, low-latency setting ({low_label})",
            low,
            ("same, defaults", one),
            {f"defaults_{k}": v for k, v in _steady_extra(one).items()},
        ),
        BenchResult(
            f"end to end: publish → 3 tier stores, low-latency setting ({low_label})",
            Measurement(low_burst.rate, unit),
            "same, defaults",
            Measurement(e2e_rate, unit),
            extra={
                "cpu_us_per_event_pipeline": round(low_burst.cpu_us),
                "cpu_us_per_event_sinks": round(low_burst.sink_cpu_us),
                "files_written": low_burst.files_written,
                "defaults_files_written_with_its_steady_run": one.files_written,
                "defaults_cpu_us_per_event_pipeline": round(one.cpu_us),
                "defaults_cpu_us_per_event_sinks": round(one.sink_cpu_us),
            },
        ),
    ]
    results += _hop_results("", one, r50, r95)
    results += _hop_results(f", flush {FAST_FLUSH_S} s", fast, r50, r95)
    results.append(
        _steady_result(
            f"freshness p95 at 1,000 ev/s, low-latency setting, each record-tier sink its own "
            f"process at nice {APART_NICE} ({low_label})",
            apart,
            ("same, the sinks as threads of one process", low),
            {**_hop_extra(apart), **{f"threads_{k}": v for k, v in _hop_extra(low).items()}},
        )
    )
    results += _hop_results(", low-latency setting", low, r50, r95)
    results += _hop_results(", low-latency setting, sinks apart", apart, r50, r95)
    if base is not None and base_fast is not None:
        results += _baseline_results(checkout or "", ctx.n(120_000), one, fast, base, base_fast)
    return results


def _steady_result(
    name: str, run: _Run, beside: tuple[str, _Run], extra: dict[str, float | str]
) -> BenchResult:
    """A steady run's freshness p95 (toward the issue's ≤ 1 s) beside another run's, with
    its p50 and p99, CPU per event and files written."""
    p50, p95, p99 = _percentiles(run.fresh)
    return BenchResult(
        name,
        Measurement(p95, "s"),
        beside[0],
        Measurement(_percentiles(beside[1].fresh)[1], "s"),
        higher_is_better=False,
        target="≤ 1 s",
        extra={
            "events": len(run.fresh),
            "p50_s": round(p50, 3),
            "p99_s": round(p99, 3),
            **_steady_extra(run),
            **extra,
        },
    )


def _hop_results(label: str, run: _Run, r50: float, r95: float) -> list[BenchResult]:
    """Each hop's p95 (and p50) of a steady run, and one poll's, beside the broker round
    trip's."""

    def p95(name: str, value: float, extra: dict[str, float | str]) -> BenchResult:
        return BenchResult(
            f"freshness{name} p95{label}",
            Measurement(value, "s"),
            "raw broker round trip p95",
            Measurement(r95, "s"),
            higher_is_better=False,
            extra=extra,
        )

    out = []
    for hop in HOPS:
        h50, h95, h99 = _percentiles(run.hops.get(hop, []))
        extra: dict[str, float | str] = {
            "events": len(run.hops.get(hop, [])),
            "p50_s": round(h50, 3),
            "p99_s": round(h99, 3),
            "baseline_p50_s": round(r50, 3),
            **(_sink_hop_extra(run) if hop == HOPS[2] else {}),
        }
        out.append(p95(f" hop {hop}", h95, extra))
    secs = [s for s, _ in run.polls]
    s50, s95, _ = _percentiles(secs)
    files = run.polls[-1][1] if run.polls else 0
    poll: dict[str, float | str] = {
        "polls": len(secs),
        "p50_s": round(s50, 4),
        "files_in_stores_at_end": files,
    }
    out.append(p95(": one poll of the 3 tier stores", s95, poll))
    return out


def _sink_hop_extra(run: _Run) -> dict[str, float]:
    """Each sink's own hops (p50/p95 over its consumed batches), ``<sink>_<hop>_p50``…"""
    return {
        f"{sink}_{key}": value
        for sink, hops in sorted(run.sink_hops.items())
        for key, value in hops.items()
    }


def _hop_extra(run: _Run) -> dict[str, float]:
    """p50 and p95 of each hop (``hop1_p50_s`` … in ``HOPS`` order)."""
    out: dict[str, float] = {}
    for i, hop in enumerate(HOPS, 1):
        h50, h95, _ = _percentiles(run.hops.get(hop, []))
        out[f"hop{i}_p50_s"], out[f"hop{i}_p95_s"] = round(h50, 3), round(h95, 3)
    return out


def _steady_extra(run: _Run) -> dict[str, float | str]:
    return {
        "cpu_us_per_event_pipeline": round(run.steady_cpu_us),
        "cpu_us_per_event_sinks": round(run.steady_sink_cpu_us),
        "files_written": run.files_written,
        "files_at_rest": run.files_at_rest,
    }


FEED = Path(__file__).with_name("segment_feed.py")
FEED_FLUSH_ROWS = 2000  # rows between flushes: 2 s at 1,000 events/s


def _writer_alone(rows: int, checkout: str | None) -> dict[str, float]:
    """``benchmarks/segment_feed.py`` with this tree's writer, or ``checkout``'s."""
    env = {**os.environ, "PYTHONPATH": checkout or str(FEED.parent.parent)}
    out = subprocess.run(
        [sys.executable, str(FEED), str(rows), "100", str(FEED_FLUSH_ROWS)],
        env=env,
        capture_output=True,
        check=True,
        timeout=1800,
    )
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def _baseline_results(
    checkout: str, rows: int, one: _Run, fast: _Run, base: _Run, base_fast: _Run
) -> list[BenchResult]:
    """This tree's figures beside another checkout's, measured in the same run."""
    name = Path(checkout).name
    feed, feed_base = _writer_alone(rows, None), _writer_alone(rows, checkout)
    out = [
        BenchResult(
            f"segment writer alone: {rows:,} rows, a flush every {FEED_FLUSH_ROWS:,}, this tree",
            Measurement(feed["cpu_us_per_row"], "µs CPU per row"),
            f"same, {name}'s writer",
            Measurement(feed_base["cpu_us_per_row"], "µs CPU per row"),
            higher_is_better=False,
            extra={
                **{k: round(v, 2) for k, v in feed.items()},
                **{f"baseline_{k}": round(v, 2) for k, v in feed_base.items()},
            },
        ),
        BenchResult(
            "end to end: publish → 3 tier stores, this tree",
            Measurement(one.rate, "events/s"),
            f"same, {name}'s code",
            Measurement(base.rate, "events/s"),
            extra={
                "cpu_us_per_event_pipeline": round(one.cpu_us),
                "cpu_us_per_event_sinks": round(one.sink_cpu_us),
                "baseline_cpu_us_per_event_pipeline": round(base.cpu_us),
                "baseline_cpu_us_per_event_sinks": round(base.sink_cpu_us),
            },
        ),
    ]
    for label, mine, theirs in (("", one, base), (f", flush {FAST_FLUSH_S} s", fast, base_fast)):
        p50, p95, p99 = _percentiles(mine.fresh)
        b50, b95, b99 = _percentiles(theirs.fresh)
        out.append(
            BenchResult(
                f"freshness p95 at 1,000 ev/s{label}, this tree",
                Measurement(p95, "s"),
                f"same, {name}'s code",
                Measurement(b95, "s"),
                higher_is_better=False,
                extra={
                    "p50_s": round(p50, 3),
                    "p99_s": round(p99, 3),
                    "baseline_p50_s": round(b50, 3),
                    "baseline_p99_s": round(b99, 3),
                    **_steady_extra(mine),
                    **{f"baseline_{k}": v for k, v in _steady_extra(theirs).items()},
                    **_hop_extra(mine),
                    **{f"baseline_{k}": v for k, v in _hop_extra(theirs).items()},
                },
            )
        )
    return out
