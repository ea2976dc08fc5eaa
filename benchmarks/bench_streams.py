"""Stream worker throughput (validate + enrich + route + aggregate, signatures on) beside a raw
confluent-kafka consume→produce passthrough of the same messages and beside a faust agent
that receives the same messages and does nothing (``benchmarks.faust_bare``: the ceiling of
any faust worker here), and the worker's peak RSS.

``ctx.scale`` scales the event count (default 200k). The worker runs as a subprocess
(``python -m streams worker``); its rate is taken from the end offsets of ``tier.national``
(first output seen → all N out), so start-up and group joins are excluded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks.framework import BenchContext, BenchResult, Measurement
from deploy.settings import kafka_env
from deploy.topics import apply_topics
from schemas import DevKeyRegistry, encode, make_change, sign
from schemas.examples import example_data
from schemas.kafka import KafkaConnection, consumer, producer
from schemas.partition import PARTITIONER
from schemas.topics import topic_specs
from streams.config import DEV_KEY_SEED

PARTITIONS = 6
STATIONS = ("00004", "00367", "03712", "20977", "26977", "27163")
ROOT = Path(__file__).resolve().parents[1]


Msgs = list[tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]]


def _messages(n: int) -> Msgs:
    registry = DevKeyRegistry(DEV_KEY_SEED.encode())
    keys = {s: registry.signing_key(f"hw-{s}-1") for s in STATIONS}
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        station = STATIONS[i % len(STATIONS)]
        hid = f"{1_000_000_000 + i:010d}"
        when = now - timedelta(minutes=1 + i % 20000)
        rt = ("encounter", "immunization", "disease_case")[i % 3]
        change = make_change(
            station=station,
            record_type=rt,
            record_id=f"{hid}:b{i}",
            op="upsert",
            record_version=1,
            station_seq=i // len(STATIONS) + 1,
            signer=f"hw-{station}-1",
            data=example_data(rt, health_id=hid, on=when.date()),
            time=when,
            now=now,
        )
        m = encode(sign(change, keys[station]))
        out.append((m.key, m.value, list[tuple[str, str | bytes | None]](m.headers)))
    return out


def _produce(kafka: KafkaConnection, topic: str, msgs: Msgs) -> None:
    p = producer(kafka, {"linger.ms": 20, "compression.type": "lz4", "partitioner": PARTITIONER})
    for key, value, headers in msgs:
        while True:
            try:
                p.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(120)


def _end_total(consumer: Consumer, topic: str) -> int:
    total = 0
    for p in range(PARTITIONS):
        _, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += hi
    return total


def _passthrough(kafka: KafkaConnection, src: str, dst: str, n: int) -> float:
    """Raw consume → produce of the same messages; returns messages/s (after the join)."""
    c = consumer(
        kafka,
        {
            "group.id": f"{src}-passthrough",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        },
    )
    p = producer(kafka, {"linger.ms": 5, "compression.type": "lz4"})
    c.subscribe([src])
    seen = 0
    started = None
    while seen < n:
        batch = c.consume(10000, timeout=1.0)
        if batch and started is None:
            started = time.perf_counter()
        for m in batch:
            if m.error():
                continue
            while True:
                try:
                    p.produce(dst, m.value(), m.key(), headers=m.headers())
                    break
                except BufferError:
                    p.poll(0.05)
            seen += 1
        p.poll(0)
        if batch:
            c.commit(asynchronous=True)
    p.flush(60)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    c.close()
    return n / elapsed if elapsed > 0 else 0.0


def _faust_bare(ctx: BenchContext, topic: str, n: int) -> float:
    """events/s of a do-nothing faust agent over the same messages (its own group)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.faust_bare",
            "--bootstrap",
            ctx.bootstrap,
            "--topic",
            topic,
            "--count",
            str(n),
            "--group",
            ctx.unique("faust-bare"),
            "--datadir",
            str(ctx.workdir / "faust-bare"),
        ],
        cwd=ROOT,
        env=kafka_env(ctx.kafka, os.environ),
        capture_output=True,
        text=True,
        timeout=max(600, n / 500),
        check=False,
    )
    for line in out.stdout.splitlines():
        if "rate=" in line:
            return float(line.rsplit("rate=", 1)[1])
    raise RuntimeError(f"faust_bare failed ({out.returncode}): {out.stderr[-2000:]}")


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def run(ctx: BenchContext) -> list[BenchResult]:
    n = ctx.n(200_000)
    prefix = ctx.unique("streams") + "."
    apply_topics(ctx.kafka, topic_specs(prefix, PARTITIONS, record_topics="single"))
    raw = prefix + "station.changes"
    msgs = _messages(n)
    _produce(ctx.kafka, raw, msgs)
    del msgs

    baseline = _passthrough(ctx.kafka, raw, prefix + "passthrough", n)
    bare = _faust_bare(ctx, raw, n)

    env = kafka_env(ctx.kafka, os.environ)  # the development registry and key: --dev
    env["TUYEN_RECORD_TOPICS"] = "single"
    log = (ctx.workdir / "streams-worker.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "worker",
            "--dev",
            "--bootstrap",
            ctx.bootstrap,
            "--topic-prefix",
            prefix,
            "--partitions",
            str(PARTITIONS),
            "--web-port",
            "0",
            "--session-timeout",
            "10",
            "--data-dir",
            str(ctx.workdir / "streams-data"),
            "--no-create-topics",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    watcher = consumer(ctx.kafka, {"group.id": prefix + "watch"})
    national = prefix + "tier.national"
    rss_samples: list[int] = []
    first_at = None
    cpu_at_first = (0.0, 0.0)
    try:
        deadline = time.monotonic() + max(600, n / 500)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"stream worker exited with {proc.returncode}")
            done = _end_total(watcher, national)
            if done and first_at is None:
                first_at = (time.perf_counter(), done)
                cpu_at_first = (
                    _cpu_s(proc.pid),
                    sum(_cpu_s(c) for c in _children(proc.pid)),
                )
            rss_samples.append(_rss_kib(proc.pid, "VmRSS"))
            if done >= n:
                break
            time.sleep(0.2)
        finished = time.perf_counter()
        cpu_at_end = (_cpu_s(proc.pid), sum(_cpu_s(c) for c in _children(proc.pid)))
        peak_kib = _rss_kib(proc.pid, "VmHWM")
        # stage-1 check processes (streams.checkpool) and multiprocessing's resource tracker
        children = _children(proc.pid)
        child_peaks_kib = [_rss_kib(c, "VmHWM") for c in children]
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    if first_at is None or done < n:
        raise RuntimeError(f"worker delivered {done}/{n} events")
    rate = (n - first_at[1]) / max(1e-9, finished - first_at[0])
    # CPU per event (independent of what else runs on the machine): the worker process
    # (faust, stage 2, publishing) and its check processes (stage 1)
    counted = max(1, n - first_at[1])
    cpu_worker_us = (cpu_at_end[0] - cpu_at_first[0]) / counted * 1e6
    cpu_checks_us = (cpu_at_end[1] - cpu_at_first[1]) / counted * 1e6
    q = len(rss_samples)
    quart = [rss_samples[min(q - 1, int(q * f))] / 1024 for f in (0.25, 0.5, 0.75, 0.99)]
    return [
        BenchResult(
            name="streams worker: validate+enrich+route+aggregate, signatures on",
            measured=Measurement(rate, "events/s"),
            baseline_name="confluent-kafka consume→produce passthrough",
            baseline=Measurement(baseline, "events/s"),
            target="≥ 10,000 events/s for one worker",
            extra={
                "events": n,
                "partitions": PARTITIONS,
                "cpu_us_per_event_worker_process": round(cpu_worker_us),
                "cpu_us_per_event_check_processes": round(cpu_checks_us),
            },
        ),
        BenchResult(
            name="streams worker: validate+enrich+route+aggregate, signatures on",
            measured=Measurement(rate, "events/s"),
            baseline_name="faust agent receiving the same messages, doing nothing",
            baseline=Measurement(bare, "events/s"),
            extra={"events": n},
        ),
        BenchResult(
            name="streams worker peak RSS",
            measured=Measurement(peak_kib / 1024, "MiB"),
            higher_is_better=False,
            target="flat over 2 M events",
            extra={
                **{
                    f"rss_at_{int(f * 100)}pct_MiB": round(v, 1)
                    for f, v in zip((0.25, 0.5, 0.75, 0.99), quart, strict=True)
                },
                "child_processes_peak_MiB": " ".join(f"{k / 1024:.1f}" for k in child_peaks_kib),
            },
        ),
    ]
