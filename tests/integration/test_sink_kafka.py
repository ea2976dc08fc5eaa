"""Sinks against a real broker: replay from offset 0, SIGKILL mid-stream and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import duckdb
from confluent_kafka import TopicPartition

from schemas.kafka import KafkaConnection, consumer, producer
from schemas.tier import TierRecord
from sinks.catalog import open_catalog
from sinks.config import sink_config
from sinks.consumer import SinkRunner
from sinks.testing import tier_record, tier_value
from tests.helpers import newest, promtool_check_metrics, wait_until

TUYEN = str(Path(sys.executable).with_name("tuyen"))


def _records(start: int, count: int) -> list[TierRecord]:
    """Upserts, corrections (version 2) and deletes of encounters and persons."""
    out = []
    for i in range(start, start + count):
        rt = "person" if i % 5 == 0 else "encounter"
        rid = f"{i // 3:010d}" if rt == "person" else f"{i // 3:010d}:v{i // 3}"
        version = i % 3 + 1
        op: Literal["upsert", "delete"] = "delete" if i % 7 == 0 and version > 1 else "upsert"
        out.append(
            tier_record(
                rt,
                n=i // 3,
                record_id=rid,
                version=version,
                op=op,
                province="01" if i % 2 else "79",
            )
        )
    return out


def _produce(kafka: KafkaConnection, topic: str, records: list[TierRecord]) -> None:
    p = producer(kafka, {"enable.idempotence": True, "linger.ms": 5})
    for r in records:
        p.produce(topic, key=r.record_key.encode(), value=tier_value(r))
    assert p.flush(30) == 0


def _expected_current(records: list[TierRecord]) -> dict[str, int]:
    latest = newest(
        records,
        key=lambda r: (r.record_type, r.record_id),
        order=lambda r: (r.record_version, r.event_time, r.event_id),
    )
    counts: dict[str, int] = {}
    for (rt, _), r in latest.items():
        if r.op != "delete":
            counts[rt] = counts.get(rt, 0) + 1
    return counts


def _current(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {
        rt: n
        for rt in ("person", "encounter")
        if (n := con.execute(f"SELECT count(*) FROM {rt}").fetchall()[0][0])
    }


def _physical(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    rows = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM "
        "(SELECT event_id FROM raw.person UNION ALL SELECT event_id FROM raw.encounter)"
    ).fetchall()
    return int(rows[0][0]), int(rows[0][1])


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*.parquet"))}


def _run(kafka: KafkaConnection, topic: str, group: str, root: Path) -> None:
    cfg = sink_config(
        "province",
        kafka=kafka,
        store_root=str(root),
        topic=topic,
        group=group,
        rotate_rows=40,
        batch_size=25,
        session_timeout_ms=6000,
    )
    SinkRunner(cfg).run(exit_when_idle_s=1.5)


def test_replay_from_offset_zero_changes_no_current_state_count(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic = make_topic("tier-province", partitions=3)
    records = _records(0, 300)
    _produce(kafka, topic, records)
    _run(kafka, topic, unique("sink"), tmp_path)
    con = open_catalog(tmp_path, "province")
    first = _current(con)
    assert first == _expected_current(records)
    files = _files(tmp_path)
    _run(kafka, topic, unique("replay"), tmp_path)  # a new group: from offset 0
    assert _current(con) == first
    assert _files(tmp_path).keys() == files.keys()  # same names: rewritten, not added
    assert _physical(con) == (300, 300)


def _committed(kafka: KafkaConnection, group: str, topic: str, partitions: int) -> int:
    c = consumer(kafka, {"group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        c.close()


def test_sigkilled_sink_restarts_without_missing_or_duplicate_rows(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic = make_topic("tier-province", partitions=3)
    group = unique("sink")
    records = _records(0, 400)
    _produce(kafka, topic, records[:200])
    args = [
        TUYEN,
        "sink",
        "province",
        "--root",
        str(tmp_path),
        "--bootstrap",
        kafka.bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--batch-size",
        "7",
        "--rotate-rows",
        "30",
        "--flush-interval",
        "0",
    ]
    env = {**os.environ, "TUYEN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        feeder = threading.Thread(target=_produce, args=(kafka, topic, records[200:]))
        wait_until(
            lambda: _committed(kafka, group, topic, 3) >= 60,
            timeout=60,
            message="first commits",
        )
        feeder.start()
        wait_until(
            lambda: _committed(kafka, group, topic, 3) >= 150,
            timeout=60,
            message="more commits",
        )
        proc.send_signal(signal.SIGKILL)  # mid-stream, with no chance to flush or commit
        proc.wait(timeout=10)
        feeder.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _committed(kafka, group, topic, 3) < 400
    restarted = subprocess.run(
        [*args, "--exit-when-idle", "2"], env=env, capture_output=True, timeout=90, check=False
    )
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    con = open_catalog(tmp_path, "province")
    assert _physical(con) == (400, 400)  # nothing missing, nothing twice, even on disk
    assert _current(con) == _expected_current(records)
    assert _committed(kafka, group, topic, 3) == 400


def test_sink_metrics_count_what_became_visible_and_pass_promtool(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """The sink's own /metrics: rows made visible, files and bytes, commits, store freshness
    (event time → the commit after the file was durable); `promtool check metrics` is clean."""
    import urllib.request
    from datetime import UTC, datetime, timedelta

    from prometheus_client.parser import text_string_to_metric_families

    from sinks.metrics import serve_metrics

    topic = make_topic("tier-province", partitions=3)
    event_time = (datetime.now(UTC) - timedelta(seconds=30)).isoformat().encode()
    p = producer(kafka, {"enable.idempotence": True})
    for r in _records(0, 60):
        p.produce(
            topic,
            key=r.record_key.encode(),
            value=tier_value(r),
            headers=[("ce_time", event_time)],
        )
    assert p.flush(30) == 0
    cfg = sink_config(
        "province",
        kafka=kafka,
        store_root=str(tmp_path),
        topic=topic,
        group=unique("sink"),
        batch_size=25,
        flush_interval_s=0.2,
        session_timeout_ms=6000,
    )
    runner = SinkRunner(cfg)
    port = serve_metrics(lambda: [runner], 0)
    runner.run(exit_when_idle_s=1.5)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read()
    samples = {
        (s.name, s.labels.get("le", "")): s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
        if s.labels.get("tier") == "province"
    }
    assert samples[("tuyen_sink_rows_written_total", "")] == 60
    assert samples[("tuyen_sink_files_written_total", "")] >= 1
    assert samples[("tuyen_sink_bytes_written_total", "")] > 0
    assert samples[("tuyen_sink_commits_total", "")] >= 1
    assert samples[("tuyen_sink_freshness_seconds_count", "")] == 60
    assert samples[("tuyen_sink_freshness_seconds_bucket", "10.0")] == 0  # ≥ 30 s old
    assert samples[("tuyen_sink_freshness_seconds_bucket", "300.0")] == 60
    promtool_check_metrics(text)
