"""An erasure sticks against a running sink on a real broker (sinks.erasure, sinks.purge).

A province sink runs with open segments holding the person's rows (in memory and in parts);
the purge runs; more of that person's events arrive (and close those segments, which write
them whole from memory); then a fresh group replays the topic from offset 0. Afterwards no
file under the root holds the person, and every other person's events are there once.

And as deployed: `tuyen purge` with the pseudonym key, then a `tuyen sink` process outside
development mode given only the erasure key derived from it (TUYEN_ERASURE_KEY, no pseudonym
key) leaves the person out; one given another erasure key stops instead of writing them;
and a province root that did not exist at the purge holds the entry when its sink starts.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from deploy.anchors import erasure_key_text
from deploy.cli.root import app
from deploy.settings import kafka_env
from schemas.kafka import KafkaConnection
from schemas.tier import TierRecord
from sinks.config import sink_config
from sinks.consumer import SinkRunner
from sinks.erasure import ErasedWrites, Register, erasure_hasher
from sinks.purge import Purge
from sinks.roots import StoreRoots
from sinks.store import Store
from sinks.testing import tier_record
from streams.pseudonymise import Pseudonymiser
from tests.helpers import wait_until
from tests.integration.test_sink_kafka import TUYEN, _committed, _produce
from tests.unit.deploy.test_purge_cli import mentions

P = Pseudonymiser("erasure-integration-key")
H = erasure_hasher(P.digest("register", "erasure-key"))
GONE = "0000000003"


def _records(start: int, count: int) -> list[TierRecord]:
    """Person and encounter events of ten people (n = i % 10; n = 3 is the one erased)."""
    return [
        tier_record(
            "person" if i % 4 == 0 else "encounter",
            n=i % 10,
            event_id=f"e{i}",
            province="01" if i % 2 else "79",
        )
        for i in range(start, start + count)
    ]


def _runner(kafka: KafkaConnection, topic: str, group: str, root: Path) -> SinkRunner:
    cfg = sink_config(
        "province",
        kafka=kafka,
        store_root=str(root),
        topic=topic,
        group=group,
        rotate_rows=30,  # the first batch leaves every segment open, the second closes them
        max_segment_age_s=600.0,
        flush_interval_s=0.2,
        batch_size=10,
        session_timeout_ms=6000,
    )
    return SinkRunner(cfg, erasure=ErasedWrites(H))


def _on_disk(root: Path) -> tuple[int, list[str]]:
    """(rows naming the person in any column that carries an id, every event id on disk)."""
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT event_id FROM read_parquet('{root}/**/*.parquet', union_by_name = true)"
        )
        events = [r[0] for r in got.fetchall()]
    finally:
        con.close()
    return mentions(str(root), GONE), events


def sink_env(kafka: KafkaConnection, **settings: str) -> dict[str, str]:
    """A `tuyen sink` process's environment outside development mode: this one's without
    the pseudonym key, the connection's, ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUYEN_PSEUDONYM_KEY")}
    env = {**kafka_env(kafka, env), "TUYEN_DEV": "0", "TUYEN_LOG_LEVEL": "WARNING"}
    return env | settings


def test_an_erasure_sticks_against_open_segments_new_events_and_a_replay(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic = make_topic("tier-province", partitions=3)
    first, second = _records(0, 45), _records(45, 60)
    group = unique("sink")
    runner = _runner(kafka, topic, group, tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        _produce(kafka, topic, first)
        wait_until(lambda: _committed(kafka, group, topic, 3) == len(first), timeout=60)
        hits, events = _on_disk(tmp_path)
        assert hits > 0, "the person's rows are in the open segments' parts"
        assert not list(tmp_path.rglob(f"{topic}+*+0.parquet")), "every segment still open"
        report = Purge(
            str(tmp_path),
            pseudonym=P.pseudonym,
            subject_hash=lambda hid: P.pseudonym(hid, "purge"),
            erasure_hash=H,
        ).run(GONE, reason="request 2026/17")
        assert report.rows["province"] > 0
        _produce(kafka, topic, second)  # more of the person; closes the open segments
        total = len(first) + len(second)
        wait_until(lambda: _committed(kafka, group, topic, 3) == total, timeout=60)
        assert list(tmp_path.rglob(f"{topic}+*+0.parquet")), "segments closed from memory"
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    _runner(kafka, topic, unique("replay"), tmp_path).run(exit_when_idle_s=1.5)  # offset 0
    hits, events = _on_disk(tmp_path)
    assert hits == 0, "no file holds the person"
    expected = sorted(r.event_id for r in first + second if r.record_key != GONE)
    assert sorted(events) == expected, "every other person's event once"


def test_a_sink_given_only_the_derived_erasure_key_applies_the_purges_register(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    topic = make_topic("tier-province", partitions=1)
    records = _records(0, 40)
    _produce(kafka, topic, records)
    purged = CliRunner().invoke(
        app,
        ["purge", "--health-id", GONE, "--reason", "request 2026/18", "--root", str(tmp_path)],
        env={"TUYEN_DEV": "0", "TUYEN_PSEUDONYM_KEY": key},
    )
    assert purged.exit_code == 0, purged.output
    env = sink_env(kafka)

    def sink(erasure_key: str) -> subprocess.CompletedProcess[bytes]:
        argv = [TUYEN, "sink", "province", "--root", str(tmp_path), "--topic", topic]
        argv += ["--group", unique("sink"), "--exit-when-idle", "2"]
        return subprocess.run(
            argv, env={**env, "TUYEN_ERASURE_KEY": erasure_key}, capture_output=True, timeout=120
        )

    other = sink(erasure_key_text(base64.b64encode(os.urandom(32)).decode()))
    assert other.returncode == 1, other.stderr.decode()[-2000:]
    assert "written with another erasure key" in other.stderr.decode()
    if list(tmp_path.rglob("*.parquet")):  # whatever it wrote before it stopped
        assert _on_disk(tmp_path)[0] == 0
    done = sink(erasure_key_text(key))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    hits, events = _on_disk(tmp_path)
    assert hits == 0, "no file holds the person"
    assert sorted(events) == sorted(r.event_id for r in records if r.record_key != GONE)


def test_a_root_created_after_the_purge_never_takes_the_person(
    kafka: KafkaConnection,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """`tuyen purge` over every owner's root while only province 01's root exists; then
    province 79's sink starts for the first time (a new root) and replays its tier topic,
    the person's events among them: the purge registered the person in every configured
    root, so the new root never holds them (sinks.purge step 0, the rule of docs/stores.md)."""
    key = base64.b64encode(os.urandom(32)).decode()
    base = tmp_path / "store"
    (base / "province-01").mkdir(parents=True)
    topic = make_topic("tier-province", partitions=1)
    records = [
        tier_record("person" if i % 4 == 0 else "encounter", n=i % 10, event_id=f"e{i}",
                    province="79")
        for i in range(40)
    ]  # fmt: skip
    _produce(kafka, topic, records)
    purged = CliRunner().invoke(
        app,
        ["purge", "--health-id", GONE, "--reason", "request 2026/19"],
        env={"TUYEN_DEV": "0", "TUYEN_PSEUDONYM_KEY": key, "TUYEN_STORE_ROOT": str(base)},
    )
    assert purged.exit_code == 0, purged.output
    erasure_key = erasure_key_text(key)
    hashed = erasure_hasher(base64.b64decode(erasure_key))
    for root in StoreRoots.under(str(base)).province_roots():  # every configured root
        erased = Register(Store.open(root, create=False)).read()
        assert hashed(GONE) in erased.subjects, root
    env = sink_env(kafka, TUYEN_STORE_ROOT=str(base), TUYEN_ERASURE_KEY=erasure_key)
    argv = [TUYEN, "sink", "province", "--province", "79", "--topic", topic]
    argv += ["--group", unique("sink"), "--exit-when-idle", "2"]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    new_root = base / "province-79"
    assert list(new_root.rglob("*.parquet")), "the new root's sink wrote the others"
    hits, events = _on_disk(new_root)
    assert hits == 0, "the new root holds none of the person's rows"
    assert sorted(events) == sorted(r.event_id for r in records if r.record_key != GONE)
