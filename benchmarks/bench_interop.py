"""``tuyen import xml130`` beside ``tuyen publish`` of the same events as JSONL.

The simulator's stations are all made legacy: their visits are written as Decision 130
check-out files (one per station and day). The import (read, map, validate, sign, SDK
outbox with synchronous=FULL, produce, wait for Kafka) is timed; its events are read back
from the topic, written as CloudEvents JSON Lines, and published with what ``tuyen publish``
does (validate every line, with and without signature checks, then produce), to another
topic of the same broker. Rates are events per second to an acknowledged broker; CPU per
event is this process's CPU time (all threads) over the events.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from benchmarks.framework import BenchContext, BenchResult, Measurement
from producers.config import DEV_KEY_SEED, ProducerConfig, SimulationConfig
from producers.interop.importer import Importer, ReadContext, dev_signing
from producers.interop.xml130 import read_file
from producers.publish import validate_file
from producers.simulator import simulate
from producers.simulator.legacy import LegacyStations
from producers.writers import produce_messages
from schemas import DevKeyRegistry, decode, to_json_line
from schemas.facilities import FacilityRegistry
from schemas.hierarchy import Hierarchy
from schemas.kafka import admin, consumer

ROUNDS = 3


def _topic(ctx: BenchContext, stem: str) -> str:
    name = ctx.unique(stem)
    client = admin(ctx.kafka)  # held while its future completes
    client.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])[name].result(30)
    return name


def _files(ctx: BenchContext) -> tuple[list[Path], FacilityRegistry, int]:
    cfg = SimulationConfig(seed=3, provinces=("11",), n_stations=20, start="2026-06-01",
                           days=max(3, int(40 * ctx.scale)), scale=0.4, keep_truth=False,
                           offline_station_share=0.0)  # fmt: skip
    h = Hierarchy.default()
    result = simulate(cfg, hierarchy=h)
    legacy = LegacyStations(
        {s: f"11{i:03d}" for i, s in enumerate(result.stations)},
        {s: "11" for s in result.stations},
    )
    for ev in result.events:
        legacy.offer(ev)
    written = legacy.write(ctx.workdir / "xml130")
    registry = FacilityRegistry.from_csv(legacy.registry_csv())
    return written.files, registry, sum(written.visits.values())


def _read_back(ctx: BenchContext, topic: str, n: int) -> Path:
    """The topic's events as JSON Lines (``tuyen publish`` input)."""
    c = consumer(ctx.kafka, {"group.id": topic})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    path = ctx.workdir / f"{topic}.jsonl"
    got = 0
    with path.open("wb") as f:
        while got < n:
            m = c.poll(10)
            assert m is not None and m.error() is None, "import events not readable"
            f.write(to_json_line(decode(m.value(), m.headers())) + b"\n")  # type: ignore[arg-type]
            got += 1
    c.close()
    return path


def _publish(ctx: BenchContext, path: Path, verify: bool) -> tuple[float, float]:
    topic = _topic(ctx, "publish")
    registry = DevKeyRegistry(DEV_KEY_SEED) if verify else None
    cpu, started = time.process_time(), time.perf_counter()
    report = validate_file(path, registry=registry)
    assert not report.bad, report.bad[:3]
    n = produce_messages(report.good, ctx.kafka, topic)
    elapsed = time.perf_counter() - started
    return n / elapsed, (time.process_time() - cpu) / n * 1e6


def _import(
    ctx: BenchContext, files: list[Path], registry: FacilityRegistry
) -> tuple[str, int, float, float]:
    """One import into a fresh topic and fresh outboxes: (topic, events, rate, CPU µs/event)."""
    topic = _topic(ctx, "import")
    outboxes = ctx.workdir / topic

    def config_for(source: str) -> ProducerConfig:
        return ProducerConfig(kafka=ctx.kafka, topic=topic, outbox_path=outboxes / f"{source}.db")

    importer = Importer(config_for, dev_signing)
    cpu, started = time.process_time(), time.perf_counter()
    report = importer.run(files, read_file, ReadContext(registry=registry))
    left = importer.close(120)
    elapsed = time.perf_counter() - started
    events = report.published
    assert left == 0 and not report.problems and events > 0, report.summary()
    return topic, events, events / elapsed, (time.process_time() - cpu) / events * 1e6


def run(ctx: BenchContext) -> list[BenchResult]:
    """Rounds alternate import and publish (the machine's load moves between them); the best
    rate of each is reported, and the CPU per event of that round."""
    files, registry, visits = _files(ctx)
    imports, plain, verified = [], [], []
    jsonl: Path | None = None
    for _ in range(ROUNDS):
        topic, events, rate, cpu = _import(ctx, files, registry)
        imports.append((rate, cpu))
        if jsonl is None:
            jsonl = _read_back(ctx, topic, events)
        plain.append(_publish(ctx, jsonl, verify=False))
        verified.append(_publish(ctx, jsonl, verify=True))
    rate, cpu_us = max(imports)
    pub_rate, pub_cpu = max(plain)
    ver_rate, ver_cpu = max(verified)
    extra: dict[str, float | str] = {
        "files": len(files),
        "visits": visits,
        "events": events,
        "rounds": ROUNDS,
        "visits_per_s": round(rate * visits / events, 1),
        "cpu_us_per_event": round(cpu_us, 1),
    }
    return [
        BenchResult(
            "tuyen import xml130 (read, map, validate, sign, outbox FULL, produce)",
            Measurement(rate, "events/s"),
            "tuyen publish of the same events as JSONL (validate, produce)",
            Measurement(pub_rate, "events/s"),
            target="≥ 0.5",
            extra={**extra, "baseline_cpu_us_per_event": round(pub_cpu, 1)},
        ),
        BenchResult(
            "tuyen import xml130, same run",
            Measurement(rate, "events/s"),
            "tuyen publish --dev-keys (signatures verified) of the same events",
            Measurement(ver_rate, "events/s"),
            extra={**extra, "baseline_cpu_us_per_event": round(ver_cpu, 1)},
        ),
    ]
