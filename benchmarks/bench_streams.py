"""Stream worker cost and throughput (validate + enrich + route + aggregate, signatures on)
beside, on the same messages: a raw confluent-kafka consume→produce passthrough, a faust agent
that receives them and does nothing (``benchmarks.faust_bare``: the ceiling of any faust worker
here), and a Quix Streams app doing decode + Ed25519 verify + route to three topics
(``benchmarks/quix_peer.py`` in its own virtualenv: what a user might pick instead); and the
worker's peak RSS.

Issue 17's aims, in ``results.json``: the worker's CPU per event (all its processes, from
/proc) at most 150 µs above the faust agent's, and its rate at least 0.6× the peer's. The
agent runs three times per round: as faust delivers (the aim's baseline), with the worker's
delivery of fetched messages (``streams.faustio.fast_delivery``), and with that and the worker's
batches (``streams.faustio.batches``), so the overhead can also be read against an agent that
skips what the worker skips.

The worker runs in the deployed shape (a record-level topic per province); a variant with
``ENV:TUYEN_RECORD_TOPICS=single`` runs the development shape. ``ctx.scale`` scales the event
count (default 200k). ``TUYEN_BENCH_ROUNDS`` (default 1) runs
the agent, the peer and the worker that many times, interleaved (medians reported, every round
in ``extra``); ``TUYEN_BENCH_WORKER_VARIANTS`` adds worker variants to each round (see
:func:`_variants`). The worker runs as a subprocess (``python -m streams worker``) over its own
copy of the raw topic; its rate is taken from the end offsets of ``tier.national`` (first output
seen → all N out), so start-up and group joins are excluded.

``TUYEN_BENCH_PROCESSES=2`` (a comma list; ``2 ENV:NAME=value`` with an environment) also
runs, in each round, the worker as deployed (``deploy/``: N processes in one consumer group)
beside the Quix peer run the same way (N processes in one group), each over fresh topics
(the worker's standby replicas as faust's default: one): the processes start on an empty raw topic,
the events are produced once every process holds raw partitions, and both are measured from
the end of that production (no join or rebalance inside the span) until the output holds
every event (:func:`_group_round`); ``results.json`` gets that rate beside the N-process
peer's (like for like) and, as an extra, beside the one-process peer's.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from benchmarks.framework import BenchContext, BenchResult, Measurement
from deploy.settings import Settings, kafka_env
from deploy.topics import apply_topics
from schemas import DevKeyRegistry, encode, make_change, sign
from schemas.examples import example_data
from schemas.kafka import KafkaConnection, admin, consumer, producer
from schemas.keys import DEV_KEY_SEED
from schemas.partition import PARTITIONER
from schemas.topics import RecordTopics, TopicSpec, topic_specs
from streams.config import APP_ID

PARTITIONS = 6
STATIONS = ("00004", "00367", "03712", "20977", "26977", "27163")
ROOT = Path(__file__).resolve().parents[1]
# the Quix Streams peer's own virtualenv (benchmarks/quix_peer.py; not a project dependency)
PEER_REQUIREMENTS = ("quixstreams==3.28.1", "PyNaCl==1.6.2", "rfc8785==0.1.4", "orjson==3.13.0")


Msgs = list[tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]]


def _messages(n: int) -> Msgs:
    registry = DevKeyRegistry(DEV_KEY_SEED)
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


def _end_total(consumer: Consumer, topic: str) -> int | None:
    """The sum of ``topic``'s end offsets; None while a partition's leader is not known yet
    (a topic just created among the deployed shape's many)."""
    total = 0
    for p in range(PARTITIONS):
        try:
            _, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        except KafkaException:
            return None
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


def _faust_bare(
    ctx: BenchContext, topic: str, n: int, *, fast: bool = False, take: bool = False
) -> Round:
    """events/s and CPU µs per event of a do-nothing faust agent over the same messages (its
    own group); ``fast``: with the worker's delivery (``streams.faustio.fast_delivery``);
    ``take``: and the worker's batches (``streams.faustio.batches``)."""
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
            str(ctx.workdir / ctx.unique("faust-bare")),
            *(["--fast-delivery"] if fast else []),
            *(["--fast-take"] if take else []),
        ],
        cwd=ROOT,
        env=kafka_env(ctx.kafka, os.environ),
        capture_output=True,
        text=True,
        timeout=max(600, n / 500),
        check=False,
    )
    found = re.search(r"rate=([0-9.]+) cpu_us=([0-9.]+)", out.stdout)  # (after escape codes)
    if found:
        return Round(float(found[1]), float(found[2]), {})
    raise RuntimeError(
        f"faust_bare failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}"
    )


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


def _schedstat(pid: int) -> tuple[float, float, float]:
    """From schedstat: seconds the process's threads have spent runnable but waiting for a
    CPU (run delay; all its threads), and its main thread's (the event loop's) CPU seconds
    and run delay; zeros if it is gone. Beside the wall time they tell waiting for the
    machine from waiting on I/O, another thread or a timer."""
    total = main_run = main_delay = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0, 0.0, 0.0
    for task in tasks:
        try:
            run, delay = (int(f) / 1e9 for f in (task / "schedstat").read_text().split()[:2])
        except (OSError, ValueError):
            continue
        total += delay
        if task.name == str(pid):
            main_run, main_delay = run, delay
    return total, main_run, main_delay


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


@dataclass(frozen=True)
class Round:
    """One measured run of a consumer over the same messages: events/s and CPU µs per event
    (all its processes, from the first event out on)."""

    rate: float
    cpu_us: float
    detail: dict[str, float]


def _worker_env(ctx: BenchContext, prefix: str, env_extra: dict[str, str]) -> dict[str, str]:
    """A worker's environment (the development registry and key: ``--dev``), in the deployed
    shape (a topic per province) unless a variant asks for the development one; its topics
    made."""
    env = kafka_env(ctx.kafka, os.environ)
    env["TUYEN_RECORD_TOPICS"] = "province"
    env.update(env_extra)
    shape: RecordTopics = "single" if env["TUYEN_RECORD_TOPICS"] == "single" else "province"
    apply_topics(ctx.kafka, topic_specs(prefix, PARTITIONS, record_topics=shape))
    return env


def _worker_command(ctx: BenchContext, prefix: str, data_dir: Path, args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "streams", "worker", "--dev", "--bootstrap", ctx.bootstrap]
    command += ["--topic-prefix", prefix, "--partitions", str(PARTITIONS), "--web-port", "0"]
    command += ["--session-timeout", "10", "--data-dir", str(data_dir)]
    return [*command, "--no-create-topics", "--log-level", "WARNING", *args]


def _worker(ctx: BenchContext, msgs: Msgs, args: list[str], env_extra: dict[str, str]) -> Round:
    """A ``python -m streams worker`` over ``msgs`` in fresh topics (its own prefix)."""
    n = len(msgs)
    prefix = ctx.unique("streams") + "."
    env = _worker_env(ctx, prefix, env_extra)
    _produce(ctx.kafka, prefix + "station.changes", msgs)
    cwd = Path(env.pop("CWD", ROOT))
    log = (ctx.workdir / "streams-worker.log").open("ab")
    command = _worker_command(ctx, prefix, ctx.workdir / prefix, args)
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    watcher = consumer(ctx.kafka, {"group.id": prefix + "watch"})
    national = prefix + "tier.national"
    rss_samples: list[int] = []
    first_at = None
    cpu_at_first = (0.0, 0.0)
    sched_at_first = (0.0, 0.0, 0.0)
    done = 0
    try:
        deadline = time.monotonic() + max(600, n / 500)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"stream worker exited with {proc.returncode}")
            ends = _end_total(watcher, national)
            if ends is None:
                time.sleep(0.2)
                continue
            done = ends
            if done and first_at is None:
                first_at = (time.perf_counter(), done)
                cpu_at_first = (_cpu_s(proc.pid), sum(_cpu_s(c) for c in _children(proc.pid)))
                sched_at_first = _schedstat(proc.pid)
            rss_samples.append(_rss_kib(proc.pid, "VmRSS"))
            if done >= n:
                break
            time.sleep(0.2)
        finished = time.perf_counter()
        cpu_at_end = (_cpu_s(proc.pid), sum(_cpu_s(c) for c in _children(proc.pid)))
        sched_at_end = _schedstat(proc.pid)
        peak_kib = _rss_kib(proc.pid, "VmHWM")
        # stage-1 check processes (streams.checkpool, if any) and multiprocessing's tracker
        child_peaks_kib = [_rss_kib(c, "VmHWM") for c in _children(proc.pid)]
    finally:
        watcher.close()
        _stop(proc)
    if first_at is None or done < n:
        raise RuntimeError(f"worker delivered {done}/{n} events")
    counted = max(1, n - first_at[1])
    rate = counted / max(1e-9, finished - first_at[0])
    # CPU per event (moves less with what else runs on the machine than the rate): the worker
    # process (faust, stages 1 and 2, publishing) and its check processes if any
    cpu_worker_us = (cpu_at_end[0] - cpu_at_first[0]) / counted * 1e6
    cpu_checks_us = (cpu_at_end[1] - cpu_at_first[1]) / counted * 1e6
    q = len(rss_samples)
    wall_us = (finished - first_at[0]) / counted * 1e6
    run_delay, main_cpu, main_delay = (
        (end - start) / counted * 1e6
        for start, end in zip(sched_at_first, sched_at_end, strict=True)
    )
    detail = {
        # where the time per event goes: the event loop's CPU, its waits for a CPU (the
        # machine's load) and the rest, where it waits on I/O, another thread or a timer
        "wall_us_per_event": wall_us,
        "main_thread_cpu_us_per_event": main_cpu,
        "main_thread_run_delay_us_per_event": main_delay,
        "main_thread_waiting_us_per_event": wall_us - main_cpu - main_delay,
        "run_delay_us_per_event": run_delay,
        "cpu_us_per_event_worker_process": cpu_worker_us,
        "cpu_us_per_event_check_processes": cpu_checks_us,
        "peak_MiB": peak_kib / 1024,
        "child_processes_peak_MiB": sum(child_peaks_kib) / 1024,
        **{
            f"rss_at_{int(f * 100)}pct_MiB": rss_samples[min(q - 1, int(q * f))] / 1024
            for f in (0.25, 0.5, 0.75, 0.99)
        },
    }
    return Round(rate, cpu_worker_us + cpu_checks_us, detail)


def _group_members(client: AdminClient, group: str, topic: str) -> int:
    """How many members of ``group`` hold partitions of ``topic`` (0 while it rebalances)."""
    try:
        (future,) = client.describe_consumer_groups([group], request_timeout=10).values()
        described = future.result()
    except KafkaException:
        return 0
    if described.state != ConsumerGroupState.STABLE:
        return 0
    return sum(
        any(tp.topic == topic for tp in m.assignment.topic_partitions) for m in described.members
    )


def _group_round(
    ctx: BenchContext,
    msgs: Msgs,
    start: Callable[[int], subprocess.Popen[bytes]],
    processes: int,
    group: tuple[str, str],
    out_topic: str,
) -> Round:
    """``processes`` processes in one consumer group (``group``: its id and input topic),
    started by ``start(i)`` on an empty input topic; the events are produced once every
    process holds input partitions, and measured from the end of that production (all
    events in the topic, no join or rebalance inside the span) until ``out_topic`` holds
    them all: the rate, and the CPU of every process (and its children) over the span."""
    n = len(msgs)
    procs = [start(i) for i in range(processes)]
    watcher = consumer(ctx.kafka, {"group.id": out_topic + ".watch"})
    client = admin(ctx.kafka)
    try:
        deadline = time.monotonic() + 600
        while _group_members(client, *group) < processes:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{processes} processes of {group[0]} never all joined")
            time.sleep(0.5)
        _produce(ctx.kafka, group[1], msgs)
        started, done_at_start = time.perf_counter(), _end_total(watcher, out_topic) or 0
        pids = [pid for p in procs for pid in (p.pid, *_children(p.pid))]
        cpu_at_start = sum(_cpu_s(pid) for pid in pids)
        done = done_at_start
        deadline = time.monotonic() + max(600, n / 500)
        while done < n and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a process of {group[0]} exited")
            time.sleep(0.1)
            done = _end_total(watcher, out_topic) or done
        finished = time.perf_counter()
        cpu = sum(_cpu_s(pid) for pid in pids) - cpu_at_start
    finally:
        watcher.close()
        for p in procs:
            _stop(p)
    if done < n:
        raise RuntimeError(f"{group[0]}: {done}/{n} events out")
    counted = max(1, n - done_at_start)
    return Round(counted / max(1e-9, finished - started), cpu / counted * 1e6, {})


def _workers(ctx: BenchContext, msgs: Msgs, processes: int, env_extra: dict[str, str]) -> Round:
    """The default worker as deployed (one consumer group, N processes: ``deploy/``'s replicas)
    over ``msgs`` in fresh topics (see :func:`_group_round`), ``env_extra`` in its
    environment."""
    prefix = ctx.unique("streams") + "."
    env = _worker_env(ctx, prefix, env_extra)
    log = (ctx.workdir / "streams-worker.log").open("ab")

    def start(i: int) -> subprocess.Popen[bytes]:
        command = _worker_command(ctx, prefix, ctx.workdir / prefix / str(i), [])
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    group = (prefix + APP_ID, prefix + "station.changes")
    return _group_round(ctx, msgs, start, processes, group, prefix + "tier.national")


def _quix_peers(ctx: BenchContext, python: Path, msgs: Msgs, processes: int) -> Round:
    """The Quix Streams peer run the same way: N processes in one group over a fresh copy of
    the raw topic (see :func:`_group_round`)."""
    prefix = ctx.unique("peer") + "."
    raw, group = prefix + "station.changes", prefix + "group"
    apply_topics(
        ctx.kafka,
        [TopicSpec(prefix + t, PARTITIONS) for t in ("station.changes", *_PEER_TIERS)],
    )
    env = _peer_env(ctx)
    command = _peer_command(ctx, python, raw, prefix, 10**12, group)
    log = (ctx.workdir / "quix-peer.log").open("ab")

    def start(i: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    return _group_round(ctx, msgs, start, processes, (group, raw), prefix + "national")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _peer_python() -> Path:
    """The peer's virtualenv (built once under the project's state dir, rebuilt when
    :data:`PEER_REQUIREMENTS` change): the project never depends on quixstreams."""
    venv = Settings.load().home / "bench-peer"
    stamp = venv / "requirements.txt"
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    python = venv / "bin" / "python"
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *PEER_REQUIREMENTS], check=True, timeout=900)
        stamp.write_text(wanted)
    return python


def _peer_keys(path: Path) -> Path:
    """The development signers' public keys (what the worker's --dev registry holds for the
    stations the messages come from), for the peer."""
    registry = DevKeyRegistry(DEV_KEY_SEED)
    keys = {}
    for station in STATIONS:
        signer = f"hw-{station}-1"
        keys[signer] = base64.b64encode(registry.keys_of(signer)[0].public_key).decode()
    path.write_bytes(orjson.dumps(keys))
    return path


_PEER_TIERS = ("district", "province", "national")


def _peer_env(ctx: BenchContext) -> dict[str, str]:
    """The peer's environment: the connection's librdkafka security settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    security = {
        k: v
        for k, v in ctx.kafka.librdkafka().items()
        if k.startswith(("security.", "sasl.", "ssl."))
    }
    env["TUYEN_PEER_KAFKA"] = orjson.dumps(security).decode()
    return env


def _peer_command(
    ctx: BenchContext, python: Path, topic: str, out_prefix: str, count: int, group: str
) -> list[str]:
    command = [str(python), str(ROOT / "benchmarks" / "quix_peer.py"), "--topic", topic]
    command += ["--broker", ctx.bootstrap]
    command += ["--out-prefix", out_prefix, "--count", str(count), "--group", group]
    return [*command, "--keys", str(_peer_keys(ctx.workdir / "peer-keys.json"))]


def _quix_peer(ctx: BenchContext, python: Path, topic: str, n: int) -> Round:
    """The Quix Streams peer (``benchmarks/quix_peer.py``, its own virtualenv) over ``topic``:
    decode + Ed25519 verify + route to three topics, its own group and output topics."""
    out_prefix = ctx.unique("peer") + "."
    apply_topics(ctx.kafka, [TopicSpec(out_prefix + t, PARTITIONS) for t in _PEER_TIERS])
    command = _peer_command(ctx, python, topic, out_prefix, n, ctx.unique("peer"))
    out = subprocess.run(
        command,
        env=_peer_env(ctx),
        capture_output=True,
        text=True,
        timeout=max(600, n / 300),
        check=False,
    )
    found = re.search(r"rate=([0-9.]+) cpu_us=([0-9.]+) bad=([0-9]+)", out.stdout)
    if not found or int(found[3]):
        raise RuntimeError(
            f"quix peer failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}"
        )
    return Round(float(found[1]), float(found[2]), {})


def _variants() -> dict[str, tuple[list[str], dict[str, str]]]:
    """The worker variants to run: the default worker, plus those named in
    ``TUYEN_BENCH_WORKER_VARIANTS`` (``name=--flag value ENV:NAME=value CWD:/a/checkout;…``,
    for paired measurements of a change: each round runs every variant; ``CWD:`` runs the
    worker of another checkout of the project, e.g. ``main``'s, for a before/after)."""
    variants: dict[str, tuple[list[str], dict[str, str]]] = {"worker": ([], {})}
    for spec in filter(None, os.environ.get("TUYEN_BENCH_WORKER_VARIANTS", "").split(";")):
        name, _, rest = spec.partition("=")
        args = [t for t in rest.split() if not t.startswith(("ENV:", "CWD:"))]
        env = dict(t[4:].split("=", 1) for t in rest.split() if t.startswith("ENV:"))
        env.update(("CWD", t[4:]) for t in rest.split() if t.startswith("CWD:"))
        variants[name.strip()] = (args, env)
    return variants


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def run(ctx: BenchContext) -> list[BenchResult]:
    n = ctx.n(200_000)
    rounds = int(os.environ.get("TUYEN_BENCH_ROUNDS", "1"))
    prefix = ctx.unique("streams") + "."
    apply_topics(ctx.kafka, topic_specs(prefix, PARTITIONS, record_topics="single"))
    raw = prefix + "station.changes"
    msgs = _messages(n)
    _produce(ctx.kafka, raw, msgs)
    peer_python = _peer_python()
    baseline = _passthrough(ctx.kafka, raw, prefix + "passthrough", n)
    variants = _variants()
    # "N" or "N ENV:NAME=value ...", comma-separated: N worker processes in one group (and
    # the peer's N processes, once per N and round)
    scaled = [p.strip() for p in os.environ.get("TUYEN_BENCH_PROCESSES", "").split(",") if p]
    runs: dict[str, list[Round]] = {
        "faust-bare": [],
        "faust-bare-fast": [],
        "faust-bare-fast-take": [],
        "quix-peer": [],
        **{v: [] for v in variants},
    }
    for _ in range(rounds):  # interleaved: each round runs everything once
        runs["faust-bare"].append(_faust_bare(ctx, raw, n))
        runs["faust-bare-fast"].append(_faust_bare(ctx, raw, n, fast=True))
        runs["faust-bare-fast-take"].append(_faust_bare(ctx, raw, n, fast=True, take=True))
        runs["quix-peer"].append(_quix_peer(ctx, peer_python, raw, n))
        for name, (args, env) in variants.items():
            runs[name].append(_worker(ctx, msgs, args, env))
        for spec in scaled:
            p, *rest = spec.split()
            env = dict(t[4:].split("=", 1) for t in rest if t.startswith("ENV:"))
            runs.setdefault(_PROCESSES + spec, []).append(_workers(ctx, msgs, int(p), env))
        for p in dict.fromkeys(spec.split()[0] for spec in scaled):
            runs.setdefault(_PEER_PROCESSES + p, []).append(
                _quix_peers(ctx, peer_python, msgs, int(p))
            )
    del msgs
    return _results(n, rounds, baseline, runs)


#: the names of the runs of N processes in one group (``TUYEN_BENCH_PROCESSES``)
_PROCESSES = "worker processes="
_PEER_PROCESSES = "quix-peer processes="


def _scaled_results(
    runs: dict[str, list[Round]], common: dict[str, float | str]
) -> list[BenchResult]:
    """The worker as deployed, N processes in one group, beside the peer run the same way
    (like for like) and beside the one-process peer (``TUYEN_BENCH_PROCESSES``)."""
    out = []
    single = _median([r.rate for r in runs["quix-peer"]])
    for name, rounds in runs.items():
        if not name.startswith(_PROCESSES):
            continue
        spec = name.removeprefix(_PROCESSES)
        processes = spec.split()[0]
        peers = runs[_PEER_PROCESSES + processes]
        rate, peer = _median([r.rate for r in rounds]), _median([r.rate for r in peers])
        extra: dict[str, float | str] = {
            **common,
            "processes": spec,
            "cpu_us_per_event_worker": round(_median([r.cpu_us for r in rounds])),
            "cpu_us_per_event_peer": round(_median([r.cpu_us for r in peers])),
            "rate_vs_one_process_peer": round(rate / single, 2) if single else 0.0,
            "one_process_peer_rate": round(single),
            "worker_rounds": " ".join(f"{r.rate:.0f}/s:{r.cpu_us:.0f}us" for r in rounds),
            "peer_rounds": " ".join(f"{r.rate:.0f}/s:{r.cpu_us:.0f}us" for r in peers),
        }
        out.append(
            BenchResult(
                name=f"streams worker, {processes} processes in one group (as deployed)"
                + spec.removeprefix(processes).replace(" ENV:", ", "),
                measured=Measurement(rate, "events/s"),
                baseline_name=f"Quix Streams peer, {processes} processes in one group",
                baseline=Measurement(peer, "events/s"),
                target="≥ 0.6× the peer's rate (extra: beside the one-process peer)",
                extra=extra,
            )
        )
    return out


_WAITS = (
    "wall_us_per_event",
    "main_thread_cpu_us_per_event",
    "main_thread_run_delay_us_per_event",
    "main_thread_waiting_us_per_event",
    "run_delay_us_per_event",
)


def _waits(rounds: list[Round]) -> dict[str, float | str]:
    """Medians of where a worker variant's time per event went (see :func:`_worker`), and by
    round: wall / event loop's CPU / its waiting (not for a CPU), µs per event."""
    medians: dict[str, float | str] = {
        k: round(_median([r.detail[k] for r in rounds])) for k in _WAITS
    }
    keys = ("wall_us_per_event", "main_thread_cpu_us_per_event", "main_thread_waiting_us_per_event")
    medians["wall_loop_cpu_waiting_rounds"] = " ".join(
        "/".join(f"{r.detail[k]:.0f}" for k in keys) for r in rounds
    )
    return medians


def _results(
    n: int, rounds: int, baseline: float, runs: dict[str, list[Round]]
) -> list[BenchResult]:
    """The figures (medians over the rounds, each round's beside them)."""
    med = {
        k: (_median([r.rate for r in v]), _median([r.cpu_us for r in v])) for k, v in runs.items()
    }
    per_round = {
        f"{k}_rounds": " ".join(f"{r.rate:.0f}/s:{r.cpu_us:.0f}us" for r in v)
        for k, v in runs.items()
    }
    worker, bare, peer = med["worker"], med["faust-bare"], med["quix-peer"]
    bare_fast, bare_take = med["faust-bare-fast"], med["faust-bare-fast-take"]
    detail = runs["worker"][-1].detail
    common: dict[str, float | str] = {"events": n, "partitions": PARTITIONS, "rounds": rounds}
    out = [
        BenchResult(
            name="streams worker: validate+enrich+route+aggregate, signatures on",
            measured=Measurement(worker[0], "events/s"),
            baseline_name="Quix Streams peer: decode + Ed25519 verify + route to 3 topics",
            baseline=Measurement(peer[0], "events/s"),
            target="≥ 0.6× the peer's rate",
            extra={
                **common,
                "cpu_us_per_event_worker": round(worker[1]),
                "cpu_us_per_event_peer": round(peer[1]),
                **per_round,
            },
        ),
        BenchResult(
            name="streams worker CPU per event (all its processes)",
            measured=Measurement(worker[1], "µs/event"),
            baseline_name="faust agent receiving the same messages, doing nothing",
            baseline=Measurement(bare[1], "µs/event"),
            higher_is_better=False,
            target="overhead (worker − faust agent) ≤ 150 µs/event",
            extra={
                **common,
                "overhead_us_per_event": round(worker[1] - bare[1]),
                "worker_rate": round(worker[0]),
                "faust_agent_rate": round(bare[0]),
                # the same agent with the worker's delivery of fetched messages (faustio.
                # fast_delivery): what of the overhead is the project's own work
                "faust_agent_fast_delivery_cpu_us_per_event": round(bare_fast[1]),
                "faust_agent_fast_delivery_rate": round(bare_fast[0]),
                "overhead_vs_fast_delivery_agent_us_per_event": round(worker[1] - bare_fast[1]),
                # and with the worker's batches too (faustio.batches: faustbatch.take_batches)
                "faust_agent_fast_take_cpu_us_per_event": round(bare_take[1]),
                "faust_agent_fast_take_rate": round(bare_take[0]),
                "cpu_us_per_event_worker_process": round(
                    _median([r.detail["cpu_us_per_event_worker_process"] for r in runs["worker"]])
                ),
                "cpu_us_per_event_check_processes": round(
                    _median([r.detail["cpu_us_per_event_check_processes"] for r in runs["worker"]])
                ),
                **_waits(runs["worker"]),
            },
        ),
        BenchResult(
            name="streams worker: validate+enrich+route+aggregate, signatures on",
            measured=Measurement(worker[0], "events/s"),
            baseline_name="confluent-kafka consume→produce passthrough",
            baseline=Measurement(baseline, "events/s"),
            extra=common,
        ),
        BenchResult(
            name="streams worker peak RSS",
            measured=Measurement(detail["peak_MiB"], "MiB"),
            higher_is_better=False,
            target="flat over 2 M events",
            extra={k: round(v, 1) for k, v in detail.items() if "MiB" in k},
        ),
    ]
    out += _scaled_results(runs, common)
    for name in runs:
        if name in ("worker", "quix-peer") or name.startswith("faust-bare") or "processes=" in name:
            continue
        rate, cpu = med[name]
        out.append(
            BenchResult(
                name=f"worker variant {name}: CPU per event",
                measured=Measurement(cpu, "µs/event"),
                baseline_name="the default worker (same rounds)",
                baseline=Measurement(worker[1], "µs/event"),
                higher_is_better=False,
                extra={
                    **common,
                    "rate": round(rate),
                    "default_rate": round(worker[0]),
                    "rate_vs_peer": round(rate / peer[0], 2),
                    **_waits(runs[name]),
                    f"{name}_rounds": per_round[f"{name}_rounds"],
                },
            )
        )
    return out
