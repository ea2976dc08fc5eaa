"""Approver keys on the real sign-off path: a `tuyen sink signoff` process outside development
mode, a real broker, an approvers' registry file (schemas.approvers).

Decisions signed with an unknown approver, an unknown key id, a key the registry does not
hold under the key id named, an expired key and a revoked key are dead-lettered with their
reasons; a valid key's decision is stored. The revocation and expiry are judged at the
broker's receive time: a decision on a topic that keeps the producer's time (CreateTime),
backdated to before the revocation, is dead-lettered ``bad_time`` rather than judged at the
time its sender chose. And the publishing side (sinks.signoff.service, what `tuyen report
approve` and the portal run) refuses the same keys before anything reaches the topic.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from nacl.signing import SigningKey

from deploy.anchors import erasure_key_text
from deploy.topics import apply_topics
from schemas.hierarchy import Hierarchy
from schemas.kafka import KafkaConnection, consumer, producer
from schemas.signoff import SignoffDecision, decision_key, make_decision
from schemas.topics import SIGNOFF, topic_name, topic_specs
from sinks.reports import AccessDenied
from tests.helpers import unique_name, wait_until
from tests.integration.test_sink_erasure import TUYEN, sink_env

A, A2, A3, A4, A5, A6 = "00004", "00008", "00025", "00004", "00008", "00025"
NOW = datetime.now(UTC)
REVOKED = NOW - timedelta(hours=1)  # binh's key 2025
EXPIRED = NOW - timedelta(hours=1)  # an's only key
SIGNED = NOW - timedelta(hours=3)  # every decision's own time
OLD, NEW, AN, STRANGER = (SigningKey.generate() for _ in range(4))


def _entry(approver: str, k: SigningKey, key_id: str | None, **extra: str) -> dict[str, Any]:
    public = base64.b64encode(bytes(k.verify_key)).decode()
    got = {"approver": approver, "unit": "KV001", "roles": ["approve"], "public_key": public}
    return {**got, **({"key_id": key_id} if key_id else {}), **extra}


def _registry(path: Path) -> Path:
    path.write_bytes(
        orjson.dumps(
            {
                "approvers": [
                    _entry("binh", OLD, "2025"),
                    _entry("binh", NEW, "2026"),
                    _entry("an", AN, None, valid_to=EXPIRED.isoformat()),
                ],
                "revocations": [
                    {"approver": "binh", "key_id": "2025", "revoked_at": REVOKED.isoformat()}
                ],
            }
        )
    )
    return path


def _decision(station: str, approver: str, k: SigningKey, key_id: str | None) -> SignoffDecision:
    return make_decision(
        "approve", period="2026-10", province="01", station=station, unit="KV001",
        approver=approver, time=SIGNED,
    ).signed(k, key_id)  # fmt: skip


#: (decision, the reason it is dead-lettered with; None: stored), in the order produced
CASES: list[tuple[SignoffDecision, str | None]] = [
    (_decision(A, "binh", NEW, "2026"), None),  # the valid key
    (_decision(A2, "chi", STRANGER, None), "signer_not_registered"),  # an unknown approver
    (_decision(A3, "binh", NEW, "1999"), "unknown_key_id"),  # a key id binh never had
    (_decision(A4, "binh", STRANGER, "2026"), "tampered"),  # a key the registry does not hold
    (_decision(A5, "an", AN, None), "signer_key_expired"),  # an's key expired an hour ago
    (_decision(A6, "binh", OLD, "2025"), "signer_key_revoked"),  # revoked an hour ago
]


def _produce(
    kafka: KafkaConnection, topic: str, decisions: list[SignoffDecision], at: datetime | None
) -> None:
    p = producer(kafka, {"enable.idempotence": True})
    stamp = int(at.timestamp() * 1000) if at else 0  # 0: now (the producer's default)
    for d in decisions:
        p.produce(topic, key=decision_key(d), value=d.to_json(), timestamp=stamp)
    assert p.flush(30) == 0


def _sink(kafka: KafkaConnection, base: Path, topic: str, approvers: Path) -> None:
    env = sink_env(
        kafka,
        TUYEN_STORE_ROOT=str(base),
        TUYEN_APPROVER_KEYS=str(approvers),
        TUYEN_ERASURE_KEY=erasure_key_text(base64.b64encode(os.urandom(32)).decode()),
    )
    argv = [TUYEN, "sink", "signoff", "--topic", topic, "--group", unique_name("signoff")]
    argv += ["--exit-when-idle", "2", "--flush-interval", "0.2"]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def _stored(base: Path) -> list[tuple[str, str | None, str]]:
    """(station, key id, approver) of every stored decision."""
    rows = [
        r
        for f in sorted((base / "province-01" / "signoff").rglob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]
    return [(r["station"], r["key_id"], r["approver"]) for r in rows]


def _dead(base: Path) -> dict[int, str]:
    """Offset → reason of every dead letter in the quarantine."""
    out: dict[int, str] = {}
    for f in (base / "quarantine" / "dlq").rglob("*.parquet"):
        reason = next(p for p in f.parts if p.startswith("reason=")).removeprefix("reason=")
        for r in pq.read_table(f).to_pylist():
            out[r["offset"]] = reason
    return out


def test_the_signoff_sink_refuses_unknown_expired_and_revoked_approver_keys(
    kafka: KafkaConnection, tmp_path: Path
) -> None:
    prefix = unique_name("signoff-keys") + "."
    topic = topic_name(SIGNOFF, prefix)  # as deployed: LogAppendTime
    apply_topics(kafka, [t for t in topic_specs(prefix, 1) if t.name == topic])
    approvers = _registry(tmp_path / "approvers.json")
    _produce(kafka, topic, [d for d, _ in CASES], None)
    base = tmp_path / "store"
    _sink(kafka, base, topic, approvers)
    assert _stored(base) == [(A, "2026", "binh")]
    expected = {i: why for i, (_, why) in enumerate(CASES) if why is not None}
    assert _dead(base) == expected


def test_a_backdated_decision_on_a_create_time_topic_is_not_judged_at_its_time(
    kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A topic not made by `tuyen topics apply` keeps the producer's timestamp: the revoked
    key's decision, stamped by its sender before the revocation, and even the valid key's,
    are dead-lettered ``bad_time`` (the sink cannot know when the broker received them)."""
    topic = make_topic("signoff-createtime", partitions=1)  # CreateTime, the broker default
    approvers = _registry(tmp_path / "approvers.json")
    revoked, valid = CASES[-1][0], CASES[0][0]
    _produce(kafka, topic, [revoked, valid], REVOKED - timedelta(hours=1))
    base = tmp_path / "store"
    _sink(kafka, base, topic, approvers)
    assert _stored(base) == []
    assert _dead(base) == {0: "bad_time", 1: "bad_time"}


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        (CASES[1], "approver chi is not registered"),
        (CASES[2], "1999"),
        (CASES[3], "does not verify"),
        (CASES[4], r"key \(only\) of an does not sign .* \(it signs only decisions received bef"),
        (CASES[5], "revoked"),
    ],
    ids=lambda v: v[1] if isinstance(v, tuple) else None,
)
def test_the_publishing_side_refuses_the_same_keys_before_the_topic(
    kafka: KafkaConnection,
    tmp_path: Path,
    case: tuple[SignoffDecision, str | None],
    refusal: str,
) -> None:
    """What `tuyen report approve` and the portal run (Signoff._publish with the Kafka
    publisher): each bad key refused with its reason, nothing on the topic."""
    from schemas.signoff import load_approver_registry
    from sinks.signoff.publisher import KafkaDecisionPublisher
    from sinks.signoff.service import Signoff

    prefix = unique_name("signoff-pub") + "."
    topic = topic_name(SIGNOFF, prefix)
    apply_topics(kafka, [t for t in topic_specs(prefix, 1) if t.name == topic])
    registry = load_approver_registry(str(_registry(tmp_path / "a.json")), development=False)
    publisher = KafkaDecisionPublisher(kafka, topic)
    svc = Signoff(duckdb.connect(), Hierarchy.default(), publisher, registry=registry)
    with pytest.raises(AccessDenied, match=refusal):
        svc._publish(case[0])  # what approve / send_back / lock end with
    del svc, publisher  # its producer, before the session's broker goes
    c = consumer(kafka, {"group.id": unique_name("peek"), "auto.offset.reset": "earliest"})
    try:
        low, high = c.get_watermark_offsets(_tp(topic), timeout=10)
    finally:
        c.close()
    assert high == low == 0, "nothing reached the topic"


def _tp(topic: str) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, 0)


def _lag(kafka: KafkaConnection, group: str) -> tuple[int, dict[str, Any]]:
    """`tuyen lag --check` on ``group``: its exit code and its group."""
    from typer.testing import CliRunner

    from deploy.cli.root import app

    args = ["lag", "--bootstrap", kafka.bootstrap, "--prefix", "", "--group", group]
    got = CliRunner().invoke(app, [*args, "--check", "--format", "json"])
    (g,) = orjson.loads(got.stdout)["groups"]
    return got.exit_code, g


def test_an_idle_signoff_sink_is_ok_for_the_monitor_and_stores_what_comes_later_once(
    kafka: KafkaConnection, tmp_path: Path
) -> None:
    """A signoff sink with nothing to consume (no decision published yet) commits where it
    starts, so its group has a position: `tuyen lag --check` says OK, exit 0 (it said
    NOTFOUND, exit 2, and the monitor's TuyenConsumerGroupNotFound fired after 10 minutes).
    A decision published later is stored, and a restart of the same group stores it no
    second time."""
    prefix = unique_name("signoff-idle") + "."
    topic = topic_name(SIGNOFF, prefix)
    apply_topics(kafka, [t for t in topic_specs(prefix, 1) if t.name == topic])
    approvers = _registry(tmp_path / "approvers.json")
    base, group = tmp_path / "store", unique_name("signoff")
    env = sink_env(
        kafka,
        TUYEN_STORE_ROOT=str(base),
        TUYEN_APPROVER_KEYS=str(approvers),
        TUYEN_ERASURE_KEY=erasure_key_text(base64.b64encode(os.urandom(32)).decode()),
    )
    argv = [TUYEN, "sink", "signoff", "--topic", topic, "--group", group, "--flush-interval", "0.2"]
    sink = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    try:

        def positioned() -> tuple[int, dict[str, Any]] | None:
            got = _lag(kafka, group)
            return got if got[1]["status"] != "NOTFOUND" else None

        code, g = wait_until(positioned, timeout=60, interval=0.5, message="a position")
        assert (code, g["status"]) == (0, "OK"), g
        assert {p["committed"] for p in g["partitions"]} == {0}, g
        valid = CASES[0][0]
        _produce(kafka, topic, [valid], None)
        wait_until(lambda: _stored(base) == [(A, "2026", "binh")], timeout=60)
    finally:
        sink.terminate()
        _out, err = sink.communicate(timeout=60)
    assert sink.returncode == 0, err.decode()[-2000:]
    again = subprocess.run(
        [*argv, "--exit-when-idle", "2"], env=env, capture_output=True, timeout=120
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert _stored(base) == [(A, "2026", "binh")], "stored once"
    code, g = _lag(kafka, group)
    assert (code, g["status"]) == (0, "OK"), g
