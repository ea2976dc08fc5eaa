"""`tuyen monitor serve` against the real broker: /metrics, /api/status and the page in Chromium,
behind its bearer token; and no open door: off loopback it refuses to start without a token."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from schemas import topics as T
from schemas.kafka import KafkaConnection, admin, consumer, producer
from tests.helpers import commit_offset, promtool_check_metrics, wait_until

pytestmark = pytest.mark.broker

FAST = {"retry.backoff.ms": 10, "retry.backoff.max.ms": 100}
TUYEN = str(Path(sys.executable).with_name("tuyen"))
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return bytes(resp.read())


def status_of(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """HTTP status and response headers, without raising on 4xx."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def pipeline(kafka: KafkaConnection, prefix: str) -> tuple[dict[str, str], str]:
    """Prefixed pipeline topics with a little traffic, and two groups: one OK (committed here)
    and one stuck (its commits come from :class:`StalledCommitter`); and the stuck group's
    topic."""
    bases = (T.RAW, T.DLQ, T.REJECTIONS, T.TIER_DISTRICT, T.TIER_NATIONAL)
    names = {b: T.topic_name(b, prefix) for b in bases}
    client = admin(kafka)  # held while its futures complete
    futs = client.create_topics([NewTopic(n, 1, 1) for n in names.values()])
    for f in futs.values():
        f.result(timeout=30)
    p = producer(kafka, FAST)
    for i in range(10):
        p.produce(names[T.RAW], value=b"raw%d" % i)
    for reason in ("not_json", "not_json", "bad_time"):
        # a dead letter and its rejection record (what the monitor reads: no payload)
        p.produce(names[T.DLQ], value=b"{}", headers=[("tuyen_reason", reason.encode())])
        p.produce(names[T.REJECTIONS], value=b"", headers=[("tuyen_reason", reason.encode())])
    event_time = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    for i in range(5):
        p.produce(names[T.TIER_DISTRICT], value=b"d%d" % i)
        p.produce(
            names[T.TIER_NATIONAL], value=b"n%d" % i, headers=[("ce_time", event_time.encode())]
        )
    assert p.flush(10) == 0
    groups = {"ok": prefix + "validators", "stuck": prefix + "sink.district"}
    c = consumer(kafka, {"group.id": groups["ok"], **FAST})
    for off in (5, 10):
        commit_offset(c, names[T.RAW], off)
    c.close()
    return groups, names[T.TIER_DISTRICT]


class StalledCommitter(threading.Thread):
    """A live consumer that keeps committing the same offset: Burrow's STALL. Committing once
    in a burst would turn into STOP as soon as the time since the last commit exceeds the
    burst's span, which on a loaded machine can happen before the monitor's first look."""

    EVERY_S = 0.3

    def __init__(self, kafka: KafkaConnection, group: str, topic: str) -> None:
        super().__init__(daemon=True, name="stalled-committer")
        self.consumer = consumer(kafka, {"group.id": group, **FAST})
        self.topic = topic
        self.commits = 0
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                commit_offset(self.consumer, self.topic, 1)
                self.commits += 1
                self.done.wait(self.EVERY_S)
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=35)


@pytest.fixture
def served(
    kafka: KafkaConnection, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], str]]:
    """`tuyen monitor serve` with a token (from a file, as a secret mount gives it)."""
    prefix = unique("mon") + "."
    groups, stuck_topic = pipeline(kafka, prefix)
    committer = StalledCommitter(kafka, groups["stuck"], stuck_topic)
    committer.start()
    # a full window (10 commits) spread over seconds before the monitor's first look
    wait_until(lambda: committer.commits >= 12, timeout=60, message="stuck group's commits")
    port = free_port()
    token = secrets.token_urlsafe(24)
    (tmp_path / "token").write_text(token + "\n")
    env = {
        **os.environ,
        "TUYEN_TOPIC_PREFIX": prefix,
        "TUYEN_MONITOR_TOKEN_FILE": str(tmp_path / "token"),
    }
    log = (tmp_path / "serve.log").open("wb")
    args = ["--interval", "1", "--bootstrap", kafka.bootstrap]
    proc = subprocess.Popen(
        [TUYEN, *("monitor", "serve", "--port", str(port)), *args],
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
                doc: dict[str, Any] = orjson.loads(get(base + "/api/status", token))
            except OSError:
                return None
            return (
                doc if {g["group"] for g in doc.get("groups", [])} >= set(groups.values()) else None
            )

        wait_until(ready, timeout=30, interval=0.1, message="monitor serving both groups")
        yield base, groups, token
    finally:
        committer.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def chromium_page(url: str, shot: Path, artifacts_dir: Path) -> str:
    """The DOM of ``url`` in Debian's chromium, and a screenshot of it in ``shot``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is needed (apt-get install chromium)"
    shot.unlink(missing_ok=True)
    profile = artifacts_dir / ".chromium-profile"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=60, check=True
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert shot.stat().st_size > 5_000
    return dom


def test_metrics_status_and_page(
    served: tuple[str, dict[str, str], str], artifacts_dir: Path
) -> None:
    base, groups, token = served
    raw = get(base + "/metrics", token)
    promtool_check_metrics(raw)
    samples = [s for f in text_string_to_metric_families(raw.decode()) for s in f.samples]

    def value(name: str, **labels: str) -> float:
        for s in samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"no sample {name} {labels}")

    ok, stuck = groups["ok"], groups["stuck"]
    assert value("tuyen_consumer_group_status", group=ok) == 1  # Burrow's OK
    assert value("tuyen_consumer_group_status", group=stuck) == 3  # Burrow's ERR
    assert value("tuyen_consumer_partition_status", group=stuck, partition="0") == 5  # STALL
    assert value("tuyen_consumer_lag_messages", group=ok) == 0
    assert value("tuyen_consumer_lag_messages", group=stuck) == 4
    assert value("tuyen_consumer_lag_seconds", group=stuck) > 0
    assert value("tuyen_consumer_group_partitions", group=stuck) == 1
    assert value("tuyen_consumer_group_state", group=stuck, state="EMPTY") == 1
    assert value("tuyen_dlq_records_total", reason="not_json") == 2
    assert value("tuyen_dlq_records_total", reason="bad_time") == 1
    assert value("tuyen_stage_events_total", stage="validate", direction="in") == 10
    # out: the accepted events' national copies + the dead letters
    assert value("tuyen_stage_events_total", stage="validate", direction="out") == 5 + 3
    # freshness from the feeds the monitor may read; never a record-level tier
    assert value("tuyen_freshness_seconds_count", tier="national") == 5
    assert value("tuyen_freshness_seconds_sum", tier="national") >= 5 * 1.99  # ms stamps
    assert not [
        s
        for s in samples
        if s.name.startswith("tuyen_freshness") and s.labels.get("tier") == "district"
    ]
    assert value("tuyen_cluster_offline_partitions") == 0
    assert value("tuyen_broker_up", node="1") == 1

    status = orjson.loads(get(base + "/api/status", token))
    assert not status["all_ok"]
    assert status["health"]["dlq_reasons"] == {"not_json": 2, "bad_time": 1}

    # a sparkline needs two collections of history
    wait_until(lambda: b"<svg" in get(base + "/", token), timeout=30, message="lag history")
    dom = chromium_page(f"{base}/?token={token}", artifacts_dir / "status.png", artifacts_dir)
    for group in groups.values():
        assert group in dom
    assert 'data-status="ERR"' in dom and 'data-status="OK"' in dom
    assert "not_json" in dom and "<svg" in dom and 'id="brokers"' in dom
    page = chromium_page(
        f"{base}/group/{urllib.parse.quote(stuck, safe='')}?token={token}",
        artifacts_dir / "status-group.png",
        artifacts_dir,
    )
    assert stuck in page and 'id="partitions"' in page and "STALL" in page


def test_burrow_compatible_read_api(served: tuple[str, dict[str, str], str]) -> None:
    """The endpoints tools built for Burrow call, in Burrow's JSON shapes (behind the token
    like every path but /healthz)."""
    base, groups, token = served
    assert status_of(base + "/v3/kafka")[0] == 401
    assert orjson.loads(get(base + "/v3/kafka", token))["clusters"] == ["tuyen"]
    consumers = orjson.loads(get(base + "/v3/kafka/tuyen/consumer", token))["consumers"]
    assert set(groups.values()) <= set(consumers)
    doc = orjson.loads(get(base + f"/v3/kafka/tuyen/consumer/{groups['stuck']}/lag", token))
    st = doc["status"]
    assert (doc["error"], st["cluster"], st["group"], st["status"]) == (
        False,
        "tuyen",
        groups["stuck"],
        "ERR",
    )
    assert (st["complete"], st["partition_count"], st["totallag"]) == (1.0, 1, 4)
    (p,) = st["partitions"]
    assert (p["status"], p["current_lag"], p["complete"], p["partition"]) == ("STALL", 4, 1.0, 0)
    assert p["start"]["offset"] == 1 and set(p["end"]) == {
        "offset",
        "timestamp",
        "observedAt",
        "lag",
    }
    assert st["maxlag"]["current_lag"] == 4
    ok_url = base + f"/v3/kafka/tuyen/consumer/{groups['ok']}/status"
    ok = orjson.loads(get(ok_url, token))["status"]
    assert (ok["status"], ok["partitions"]) == ("OK", [])  # /status: only partitions not OK
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(base + "/v3/kafka/tuyen/consumer/no-such-group/lag", token)
    assert missing.value.code == 404
    assert orjson.loads(missing.value.read())["status"]["status"] == "NOTFOUND"
    with pytest.raises(urllib.error.HTTPError) as cluster:
        get(base + "/v3/kafka/other/consumer", token)
    assert cluster.value.code == 404


def test_every_path_but_healthz_needs_the_token(served: tuple[str, dict[str, str], str]) -> None:
    base, _groups, token = served
    for path in ("/", "/metrics", "/api/status", "/nowhere"):
        code, headers = status_of(base + path)
        assert code == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert status_of(base + path, {"Authorization": "Bearer wrong"})[0] == 401
    assert status_of(base + "/metrics", {"Authorization": f"Bearer {token}"})[0] == 200
    assert status_of(base + "/healthz")[0] == 200  # probes: no data, no token
    assert status_of(f"{base}/metrics?token=wrong")[0] == 401
    code, headers = status_of(f"{base}/?token={token}")
    assert code == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert token not in cookie and "HttpOnly" in headers["Set-Cookie"]
    assert status_of(base + "/api/status", {"Cookie": cookie})[0] == 200  # the page's links
    assert status_of(base + "/api/status", {"Cookie": cookie + "0"})[0] == 401


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUYEN_MONITOR_TOKEN")}
    proc = subprocess.run(
        [TUYEN, "monitor", "serve", "--host", "0.0.0.0", "--bootstrap", "127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "TUYEN_MONITOR_TOKEN is not set" in proc.stderr
