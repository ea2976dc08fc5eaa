"""End to end: publish → validate/route (signatures on) → all three tier stores.

Two figures, each beside baselines measured in the same run:

- **throughput**: simulated events published as fast as possible until every consumer group
  of the pipeline (stream worker, five sinks) has committed the last of them, so every
  valid event is durable in the district, province and national stores; beside a raw
  confluent-kafka produce of the same bytes and a raw consume→produce passthrough.
- **freshness** at a steady 1,000 events/s: for every event, the time from its publication
  (the Kafka timestamp of the raw message, kept as ``received_time``) until it is readable in
  *all three* tier stores (polled with DuckDB every 0.25 s); p50/p95/p99 beside the raw
  broker round trip (produce → consume) of the same messages.

The pipeline is the real one: ``tuyen streams worker`` and ``tuyen sink`` processes.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Producer

from benchmarks.bench_streams import _passthrough
from benchmarks.framework import BenchContext, BenchResult, Measurement
from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.simulator import simulate
from schemas import KafkaMessage
from schemas.kafka import KafkaConnection, consumer, producer
from schemas.partition import PARTITIONER
from schemas.topics import RAW, topic_name, topic_specs

PARTITIONS = 6
TIERS = ("district", "province", "national")


def _events(seed: int, days: int, scale: float) -> list[KafkaMessage]:
    end = date.today() - timedelta(days=1)
    cfg = SimulationConfig(
        seed=seed,
        provinces=("12",),
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


def _visible(root: Path, tier: str, cache: dict[Path, tuple[float, dict[str, float]]]) -> None:
    """Refresh ``cache``: per Parquet file of a tier store, event_id → received_time (epoch s).

    Files are read again only when rewritten (sinks rewrite an open segment under the same
    name as it grows)."""
    for path in (root / tier).rglob("*.parquet"):
        try:
            mtime = path.stat().st_mtime
            if path in cache and cache[path][0] == mtime:
                continue
            table = pq.read_table(path, columns=["event_id", "received_time"])
        except (OSError, pa.ArrowInvalid):
            continue  # replaced while we looked: read it next time
        ids = table.column("event_id").to_pylist()
        times = table.column("received_time").cast(pa.timestamp("us", tz="UTC")).to_pylist()
        cache[path] = (mtime, {str(e): t.timestamp() for e, t in zip(ids, times, strict=True)})


def _freshness(
    kafka: KafkaConnection, raw: str, root: Path, msgs: list[KafkaMessage], rate: int
) -> list[float]:
    """Publish ``msgs`` at ``rate``/s; seconds from publication to visible in all tiers."""
    p = _producer(kafka)
    wanted: set[str] = set()
    for m in msgs:
        for k, v in m.headers:
            if k == "ce_id":
                wanted.add(v.decode() if isinstance(v, bytes) else str(v))
    seen: dict[str, dict[str, float]] = {t: {} for t in TIERS}
    caches: dict[str, dict[Path, tuple[float, dict[str, float]]]] = {t: {} for t in TIERS}
    first_seen: dict[str, float] = {}
    started = time.monotonic()
    sent = 0
    chunk = max(1, rate // 20)
    deadline = started + len(msgs) / rate + 120
    while time.monotonic() < deadline:
        due = min(len(msgs), int((time.monotonic() - started) * rate))
        if sent < due:
            _produce(p, raw, msgs[sent : min(due, sent + chunk * 4)])
            sent = min(due, sent + chunk * 4)
        p.poll(0)
        now = time.time()
        for tier in TIERS:
            _visible(root, tier, caches[tier])
            for _, rows in caches[tier].values():
                for eid, received in rows.items():
                    seen[tier].setdefault(eid, received)
        for eid in wanted - first_seen.keys():
            if all(eid in seen[t] for t in TIERS):
                first_seen[eid] = now - seen["national"][eid]
        if sent == len(msgs) and len(first_seen) >= len(wanted) * 0.999:
            break
        time.sleep(0.05 if sent < len(msgs) else 0.25)
    p.flush(30)
    return list(first_seen.values())


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


def run(ctx: BenchContext) -> list[BenchResult]:
    prefix = ctx.unique("e2e") + "."
    apply_topics(ctx.kafka, topic_specs(prefix, PARTITIONS, record_topics="single"))
    raw = topic_name(RAW, prefix)
    burst = _events(seed=11, days=20, scale=max(0.01, 0.06 * ctx.scale))
    steady_n = ctx.n(20_000)
    steady = _events(seed=12, days=4, scale=0.05)[:steady_n]
    root = ctx.workdir / f"{prefix}store"
    pipeline = Pipeline(
        kafka=ctx.kafka,
        prefix=prefix,
        store_root=root,
        log_dir=ctx.workdir / f"{prefix}logs",
        home=ctx.workdir / f"{prefix}home",
        sink_args=("--flush-interval", "0.5"),
        development=True,
        worker_args=("--partitions", str(PARTITIONS)),
    )
    pipeline.start()
    try:
        pipeline.wait_caught_up(120, settle_s=1)  # groups joined, nothing to do yet
        started = time.perf_counter()
        p = _producer(ctx.kafka)
        _produce(p, raw, burst)
        p.flush(120)
        pipeline.wait_caught_up(1800, settle_s=0.5)
        e2e_rate = len(burst) / (time.perf_counter() - started - 0.5)
        fresh = _freshness(ctx.kafka, raw, root, steady, 1000)
    finally:
        pipeline.stop()
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
    return [
        BenchResult(
            "end to end: publish → 3 tier stores (signatures on)",
            Measurement(e2e_rate, unit),
            "raw confluent-kafka produce",
            Measurement(produce_rate, unit),
            extra={"events": len(burst)},
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
            extra={"events": len(fresh)},
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
    ]
