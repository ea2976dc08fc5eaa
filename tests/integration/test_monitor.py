"""`tuyen monitor serve` against the real broker: /metrics, /api/status and the page in Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from schemas import topics as T
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

FAST = {"retry.backoff.ms": 10, "retry.backoff.max.ms": 100}
SERVE = (
    "import typer\n"
    "from streams.monitor.cli import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app.command('version')(lambda: None)\n"
    "app()\n"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,800",
]


def commit(consumer: Consumer, topic: str, offset: int) -> None:
    """Commit one offset, retrying while a fresh broker's coordinator or new topic settles."""
    errors: list[str] = []

    def attempt() -> bool:
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        except KafkaException as exc:  # e.g. coordinator loading, topic not yet known
            errors.append(str(exc))
            return False
        return True

    wait_until(attempt, timeout=30, interval=0.05, message=lambda: f"commit: {errors[-3:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def pipeline(bootstrap: str, prefix: str) -> dict[str, str]:
    """Prefixed pipeline topics with a little traffic, and two groups: one OK, one stuck."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = {b: T.topic_name(b, prefix) for b in (T.RAW, T.VALID, T.DLQ, T.TIER_DISTRICT)}
    futs = admin.create_topics([NewTopic(n, 1, 1) for n in names.values()])
    for f in futs.values():
        f.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, **FAST})
    for i in range(10):
        producer.produce(names[T.RAW], value=b"raw%d" % i)
    for i in range(7):
        producer.produce(names[T.VALID], value=b"valid%d" % i)
    for reason in ("not_json", "not_json", "bad_time"):
        producer.produce(names[T.DLQ], value=b"{}", headers=[("tuyen_reason", reason.encode())])
    event_time = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    for i in range(5):
        producer.produce(
            names[T.TIER_DISTRICT], value=b"d%d" % i, headers=[("ce_time", event_time.encode())]
        )
    assert producer.flush(10) == 0
    groups = {"ok": prefix + "validators", "stuck": prefix + "sink.district"}
    for group, topic, offsets in (
        (groups["ok"], names[T.RAW], [5, 10]),
        (groups["stuck"], names[T.TIER_DISTRICT], [1] * 10),
    ):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **FAST})
        for off in offsets:
            commit(c, topic, off)
        c.close()
    return groups


@pytest.fixture
def served(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    prefix = unique("mon") + "."
    groups = pipeline(kafka_bootstrap, prefix)
    port = free_port()
    env = {**os.environ, "TUYEN_TOPIC_PREFIX": prefix}
    log = (tmp_path / "serve.log").open("wb")
    args = ["--interval", "1", "--bootstrap", kafka_bootstrap]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, *("monitor", "serve", "--port", str(port)), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            try:
                doc: dict[str, Any] = orjson.loads(get(base + "/api/status"))
            except OSError:
                return None
            return (
                doc if {g["group"] for g in doc.get("groups", [])} >= set(groups.values()) else None
            )

        wait_until(ready, timeout=30, interval=0.1, message="monitor serving both groups")
        yield base, groups
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_metrics_status_and_page(served: tuple[str, dict[str, str]], artifacts_dir: Path) -> None:
    base, groups = served
    families = {f.name: f for f in text_string_to_metric_families(get(base + "/metrics").decode())}

    def value(name: str, **labels: str) -> float:
        for s in families[name].samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"no sample {name} {labels}")

    ok, stuck = groups["ok"], groups["stuck"]
    assert value("tuyen_consumer_group_status", group=ok) == 0
    assert value("tuyen_consumer_group_status", group=stuck) == 2  # ERR
    assert value("tuyen_consumer_partition_status", group=stuck, partition="0") >= 3
    assert value("tuyen_consumer_lag_messages", group=ok) == 0
    assert value("tuyen_consumer_lag_messages", group=stuck) == 4
    assert value("tuyen_consumer_lag_seconds", group=stuck) > 0
    assert value("tuyen_dlq_records", reason="not_json") == 2
    assert value("tuyen_dlq_records", reason="bad_time") == 1
    assert value("tuyen_stage_events", stage="validate", direction="in") == 10
    assert value("tuyen_stage_events", stage="validate", direction="out") == 7 + 3
    assert value("tuyen_freshness_samples", tier="district") == 5
    assert value("tuyen_freshness_seconds", tier="district", quantile="0.5") >= 1.99  # ms stamps

    status = orjson.loads(get(base + "/api/status"))
    assert not status["all_ok"]
    assert status["health"]["dlq_reasons"] == {"not_json": 2, "bad_time": 1}

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is needed (apt-get install chromium)"
    shot = artifacts_dir / "status.png"
    shot.unlink(missing_ok=True)
    profile = artifacts_dir / ".chromium-profile"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", base + "/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for group in groups.values():
        assert group in dom
    assert 'data-status="ERR"' in dom and 'data-status="OK"' in dom
    assert "not_json" in dom
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", base + "/"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert shot.stat().st_size > 5_000
