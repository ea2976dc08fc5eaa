"""The stream worker against a real broker, run as a subprocess (``python -m streams worker
--dev``: development mode asked for on the command line, not inherited)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.settings import kafka_env
from deploy.topics import apply_topics
from schemas import KafkaMessage, RecordChange, encode
from schemas.dlq import H_REASON, header_value
from schemas.elements import contribution_period, contributions
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.kafka import KafkaConnection, consumer, producer
from schemas.partition import partition_for
from schemas.topics import topic_specs
from streams.live import read_live_aggregates
from streams.national import national_event_id
from streams.pseudonymise import Pseudonymiser
from tests.data.bad_inputs import STATIONS, EventFactory, bad_inputs
from tests.helpers import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 3
ROOT = Path(__file__).resolve().parents[2]

#: the pseudonym key of this module's workers (strong: a key given must be, dev mode or not)
WORKER_KEY = os.urandom(32)


class Worker:
    """A ``python -m streams worker`` subprocess."""

    def __init__(
        self,
        kafka: KafkaConnection,
        prefix: str,
        data_dir: Path,
        name: str,
        web_port: int = 0,
        registry: Path | None = None,
    ) -> None:
        self.log = data_dir / f"{name}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = kafka_env(kafka, os.environ)
        env.pop("TUYEN_DEV", None)  # --dev below asks for it
        env["TUYEN_RECORD_TOPICS"] = "single"  # the development shape: tier.district, .province
        # a key of its own (strong: even in development mode a key given must be)
        env["TUYEN_PSEUDONYM_KEY"] = base64.b64encode(WORKER_KEY).decode()
        if registry is not None:  # a key registry file (else the development keys)
            env["TUYEN_KEY_REGISTRY"] = str(registry)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams",
                "worker",
                "--dev",
                "--topic-prefix",
                prefix,
                "--partitions",
                str(PARTITIONS),
                "--web-port",
                str(web_port),
                "--batch-size",
                os.environ.get("WBATCH", "500"),
                "--verify-threads",
                os.environ.get("WTHREADS", "2"),
                "--session-timeout",
                "6",
                "--data-dir",
                str(data_dir / name),
                "--no-create-topics",
                "--log-level",
                os.environ.get("WLOG", "WARNING"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return -9
        return self.proc.returncode

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class TopicReader:
    """Accumulates every message of some topics (polled on demand, no group commits)."""

    def __init__(self, kafka: KafkaConnection, topics: list[str]) -> None:
        self.consumer = consumer(
            kafka,
            {
                "group.id": f"reader-{os.urandom(6).hex()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            },
        )
        self.consumer.subscribe(topics)
        self.messages: dict[str, list[Any]] = defaultdict(list)

    def poll(self) -> dict[str, list[Any]]:
        for msg in self.consumer.consume(5000, timeout=0.5):
            if msg.error() is None:
                self.messages[msg.topic() or ""].append(msg)
        return self.messages

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def prefix(unique: Callable[[str], str], kafka: KafkaConnection) -> str:
    p = unique("st") + "."
    apply_topics(kafka, topic_specs(p, PARTITIONS, record_topics="single"))
    return p


@pytest.fixture
def workers(kafka: KafkaConnection, prefix: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(name: str, web_port: int = 0, registry: Path | None = None) -> Worker:
        w = Worker(kafka, prefix, tmp_path, name, web_port, registry)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def produce(
    kafka: KafkaConnection,
    topic: str,
    messages: list[KafkaMessage],
    wrong: frozenset[int] = frozenset(),
) -> None:
    """Publish with the contract's partitioner (murmur2, every ``producer``'s default);
    ``wrong``: indexes of messages to put on the next partition instead."""
    settings = {"enable.idempotence": True, "linger.ms": 5, "message.max.bytes": 1_048_576}
    p = producer(kafka, settings)
    for i, m in enumerate(messages):
        kw: dict[str, Any] = {}
        if i in wrong:
            kw["partition"] = (partition_for(m.key, PARTITIONS) + 1) % PARTITIONS
        p.produce(topic, m.value, m.key, headers=list(m.headers), **kw)
        p.poll(0)
    assert p.flush(30) == 0


def event_ids(msgs: list[Any]) -> set[str]:
    return {header_value(m.headers(), "ce_id") or "" for m in msgs}


_WORKERS = Pseudonymiser(WORKER_KEY)


def tier_ids(topic: str, ids: set[str]) -> set[str]:
    """``ids`` as the tier ``topic`` carries them: the national tier has their keyed hashes
    (computed with the workers' pseudonym key)."""
    return {national_event_id(i, _WORKERS) for i in ids} if topic.endswith("national") else ids


# changes.valid is not published by default (StreamsConfig.publish_valid)
TIERS = ("tier.district", "tier.province", "tier.national")


def test_bad_inputs_go_to_the_dlq_and_valid_events_come_through(
    kafka: KafkaConnection, prefix: str, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    f = EventFactory()
    valid = f.valid(80)
    cases = bad_inputs(f)
    stream: list[KafkaMessage] = []
    wrong: set[int] = set()
    for i, m in enumerate(valid):
        stream.append(m)
        if i < len(cases):
            stream.extend(cases[i].setup)
            if cases[i].wrong_partition:
                wrong.add(len(stream))
            stream.append(cases[i].message)
    for c in cases[len(valid) :]:
        stream.extend(c.setup)
        if c.wrong_partition:
            wrong.add(len(stream))
        stream.append(c.message)
    produce(kafka, prefix + "station.changes", stream, frozenset(wrong))
    expected_ids = event_ids_of(valid) | {
        dict(s.headers)["ce_id"].decode() for c in cases for s in c.setup
    }
    reader = TopicReader(kafka, [prefix + t for t in (*TIERS, "station.changes.dlq")])
    registry = tmp_path / "keys.json"
    registry.write_bytes(f.key_registry().to_json())
    w = workers("a", registry=registry)
    try:

        def done() -> bool:
            w.alive()
            got = reader.poll()
            dlq = got[prefix + "station.changes.dlq"]
            return len(dlq) >= len(cases) and all(
                event_ids(got[prefix + t]) >= tier_ids(t, expected_ids) for t in TIERS
            )

        wait_until(done, timeout=90, message=lambda: "all outputs\n" + w.tail())
        got = reader.poll()
        reasons = sorted(
            header_value(m.headers(), H_REASON) or "" for m in got[prefix + "station.changes.dlq"]
        )
        assert reasons == sorted(c.reason.value for c in cases)
        assert len({c.reason for c in cases}) >= 25
        for t in TIERS:
            assert event_ids(got[prefix + t]) == tier_ids(t, expected_ids)
        # the national stream carries no health id of the fixture
        national = b"".join(m.value() for m in got[prefix + "tier.national"])
        for m in valid:
            key = m.key
            if key.isdigit():
                assert key not in national
        log = w.log.read_text(errors="replace")
        # its registry file holds development-derived keys: allowed in development mode only,
        # and said
        assert "DEVELOPMENT MODE" in log and "development keys in the key registry" in log
        assert w.stop() == 0
    finally:
        reader.close()


def event_ids_of(messages: list[KafkaMessage]) -> set[str]:
    return {dict(m.headers)["ce_id"].decode() for m in messages}


def test_sigkill_mid_stream_then_restart_delivers_every_event_with_two_workers(
    kafka: KafkaConnection, prefix: str, workers: Callable[..., Worker]
) -> None:
    f = EventFactory()
    first = f.valid(3000)
    produce(kafka, prefix + "station.changes", first)
    reader = TopicReader(kafka, [prefix + t for t in TIERS])
    a = workers("a")
    b = workers("b")
    try:
        wait_until(
            lambda: a.alive() and len(reader.poll()[prefix + "tier.district"]) >= 300,
            timeout=90,
            message=lambda: "first outputs\n" + a.tail() + b.tail(),
        )
        a.kill()  # mid-stream: no drain, no commit
        second = f.valid(1500)
        produce(kafka, prefix + "station.changes", second)
        a = workers("a2")
        expected = event_ids_of(first) | event_ids_of(second)

        def complete() -> bool:
            a.alive() and b.alive()
            got = reader.poll()
            return all(event_ids(got[prefix + t]) >= tier_ids(t, expected) for t in TIERS)

        wait_until(complete, timeout=150, message=lambda: "every event\n" + a.tail() + b.tail())
        assert a.stop() == 0
        assert b.stop() == 0
    finally:
        reader.close()


def oracle(changes: list[RecordChange], hierarchy: Hierarchy) -> dict[str, int]:
    """Counters recomputed from the final record states with schemas.elements."""
    final: dict[str, RecordChange] = {}
    for c in changes:
        if c.record_id not in final or c.record_version > final[c.record_id].record_version:
            final[c.record_id] = c
    out: dict[str, int] = defaultdict(int)
    for c in final.values():
        if c.op.value == "delete" or c.data is None:
            continue
        local = c.time.astimezone(VN_TZ)
        period = contribution_period(c.record_type.value, c.data, f"{local:%Y-%m}")
        placement = hierarchy.lookup(c.station, c.time)
        for unit in (
            placement.station.code,
            placement.district.code,
            placement.province.code,
            placement.national.code,
        ):
            for element, value in contributions(c.record_type.value, c.data).items():
                out[f"{unit}|{period}|{element}"] += value
    return {k: v for k, v in out.items() if v}


def test_live_aggregates_equal_recomputation_after_a_month_with_corrections(
    kafka: KafkaConnection, prefix: str, workers: Callable[..., Worker]
) -> None:
    f = EventFactory(now=datetime.now(UTC))
    start = f.now - timedelta(days=32)
    changes: list[RecordChange] = []
    rng = f.rng
    types = ("encounter", "immunization", "chronic_followup", "birth", "disease_case", "person")
    for day in range(30):
        for i in range(12):
            when = start + timedelta(days=day, hours=i)
            station = STATIONS[rng.randrange(len(STATIONS) - 1)]
            c = f.change(types[(day + i) % len(types)], station=station, when=when)
            changes.append(c)
    # corrections (new versions with other content) and deletions of earlier records
    for c in rng.sample(changes[:], 60):
        when = c.time + timedelta(hours=1)
        if rng.random() < 0.5:
            changes.append(f.again(c, version=2, when=when, op="delete"))
        else:
            data = dict(c.data or {})
            if c.record_type.value == "encounter":
                data["encounter_type"] = "inpatient"
                data.pop("referral", None)
            elif c.record_type.value == "chronic_followup":  # now uncontrolled (≥ 140/90)
                data["measurements"] = {
                    "blood_pressure": {"systolic_mmhg": 165, "diastolic_mmhg": 100}
                }
            elif c.record_type.value == "birth":
                data["place"] = "home"
            changes.append(f.again(c, version=2, when=when, data=data))
    # a resource snapshot corrected within its month
    snap = f.change("staff_snapshot", station="00004", when=start + timedelta(days=3))
    changes.append(snap)
    counts = dict((snap.data or {})["counts"], doctor=3)
    changes.append(
        f.change(
            "staff_snapshot",
            station="00004",
            record_id=snap.record_id,
            version=2,
            when=start + timedelta(days=20),
            data={**(snap.data or {}), "counts": counts},
        )
    )
    produce(kafka, prefix + "station.changes", [encode(c) for c in changes])
    expected = oracle(changes, Hierarchy.default())
    tiers = {"station", "district", "province", "national"}
    port = free_port()
    w = workers("a", port)

    def matches() -> dict[str, Any] | None:
        w.alive()
        rows = read_live_aggregates(kafka, prefix + "aggregates.live", timeout_s=5)
        live = {k: r["value"] for k, r in rows.items() if r["value"]}
        return rows if live == expected else None

    rows = wait_until(matches, timeout=90, interval=1.0, message=lambda: "aggregates\n" + w.tail())
    assert {r["tier"] for r in rows.values()} == tiers
    assert any(k.startswith("VN|") for k in expected)
    # the web view answers from the worker's counters (it holds every partition here)
    period = next(k for k in expected if k.startswith("VN|")).split("|")[1]
    url = f"http://127.0.0.1:{port}/aggregates/?unit=VN&period={period}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = orjson.loads(resp.read())
    web = {f"VN|{period}|{r['element']}": r["value"] for r in body["aggregates"] if r["value"]}
    assert web == {k: v for k, v in expected.items() if k.startswith(f"VN|{period}|")}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/", timeout=10) as resp:
        stats = orjson.loads(resp.read())
    assert stats["counts"]["accepted"] == len(changes)
    # faust's own views are off (table data, cluster topology, sensors, graph, metrics)
    for path in ("/table/", "/table/records/", "/router/", "/graph/", "/assignment/"):
        assert http_status(f"http://127.0.0.1:{port}{path}") == 404, path
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        assert orjson.loads(resp.read()) == {"status": "OK"}  # faust's bare index, no data
    # and the views listen on 127.0.0.1 only (0.0.0.0 would answer on every 127/8 address)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", port), 5):
        pass
    assert w.stop() == 0


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
