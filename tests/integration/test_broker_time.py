"""Broker time on the raw topic (a producer's CreateTime is replaced by the broker's
LogAppendTime, and that is the received time the validator uses), the worker's refusal of a
raw topic without it, and outputs the broker refuses for themselves being dead-lettered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import ConfigResource, NewTopic

from deploy.settings import kafka_env
from deploy.topics import apply_topics, raw_topic_problems
from schemas import DevKeyRegistry, codes
from schemas.dlq import H_REASON, H_STAGE, header_value
from schemas.kafka import KafkaConnection, admin, consumer, producer
from schemas.topics import DLQ, RAW, TIER_DISTRICT, TIER_NATIONAL, topic_name, topic_specs
from streams.config import StreamsConfig
from streams.output import BatchPublisher
from streams.pipeline import BatchProcessor
from streams.pseudonym_key import DEV_PSEUDONYM_KEY
from streams.runtime import StreamsRuntime
from streams.validate import Accepted, RawMessage
from tests.data.bad_inputs import KEY_SEED, EventFactory
from tests.helpers import wait_until

pytestmark = [pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[2]


def _read(kafka: KafkaConnection, topic: str, n: int) -> list[object]:
    c = consumer(
        kafka,
        {
            "group.id": f"read-{os.urandom(4).hex()}",
            "auto.offset.reset": "earliest",
        },
    )
    c.subscribe([topic])
    got: list[object] = []

    def enough() -> bool:
        got.extend(m for m in c.consume(100, 0.5) if m.error() is None)
        return len(got) >= n

    try:
        wait_until(enough, timeout=60, message=f"{n} messages on {topic}")
    finally:
        c.close()
    return got


def test_producer_create_time_is_replaced_by_the_broker_time(
    kafka: KafkaConnection, unique: Callable[[str], str]
) -> None:
    prefix = unique("bt") + "."
    apply_topics(kafka, topic_specs(prefix, 1))
    raw_topic = topic_name(RAW, prefix)
    assert raw_topic_problems(kafka, raw_topic, 1) == []
    f = EventFactory()
    msg = f.message(f.change("encounter"))
    claimed = datetime(2001, 1, 1, tzinfo=UTC)  # what a sender would like to be its "receipt"
    before = datetime.now(UTC) - timedelta(seconds=5)
    p = producer(kafka)
    p.produce(
        raw_topic,
        msg.value,
        msg.key,
        headers=list(msg.headers),
        timestamp=int(claimed.timestamp() * 1000),
    )
    assert p.flush(30) == 0
    (got,) = _read(kafka, raw_topic, 1)
    kind, ms = got.timestamp()  # type: ignore[attr-defined]
    received = datetime.fromtimestamp(ms / 1000, UTC)
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert before <= received <= datetime.now(UTC) + timedelta(seconds=5)
    runtime = StreamsRuntime(
        StreamsConfig(
            kafka=kafka,
            development=True,
            pseudonym_key=DEV_PSEUDONYM_KEY,
            partitions=1,
            verify_processes=0,
        ),
        keys=f.key_registry(),
    )
    try:
        raw = RawMessage(
            got.key(),  # type: ignore[attr-defined]
            got.value(),  # type: ignore[attr-defined]
            list(got.headers() or []),  # type: ignore[attr-defined]
            raw_topic,
            0,
            0,
            received,
        )
        verdict = runtime.validator.check(raw)
        assert isinstance(verdict, Accepted), verdict
        assert verdict.record["received_time"] == received  # the broker's, not 2001
    finally:
        runtime.close()


def _worker(
    kafka: KafkaConnection, prefix: str, partitions: int, data_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m streams worker --dev`` on ``prefix`` (it exits at once when it refuses)."""
    return subprocess.run(
        [sys.executable, "-m", "streams", "worker", "--dev", "--topic-prefix", prefix,
         "--partitions", str(partitions), "--no-create-topics", "--web-port", "0",
         "--data-dir", str(data_dir), *extra],
        cwd=ROOT,
        env=kafka_env(kafka, os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_worker_refuses_a_raw_topic_without_broker_time(
    kafka: KafkaConnection, unique: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique("legacy") + "."
    raw = topic_name(RAW, prefix)
    # every topic as declared, but the raw one created by hand (CreateTime), as before
    apply_topics(kafka, [s for s in topic_specs(prefix, 3) if s.name != raw])
    client = admin(kafka)
    client.create_topics([NewTopic(raw, 3, 1)])[raw].result(30)
    problems = raw_topic_problems(kafka, raw, 3)
    assert any("LogAppendTime" in p for p in problems), problems
    assert any("partitions" in p for p in raw_topic_problems(kafka, raw, 12))
    missing = prefix + "x"
    assert raw_topic_problems(kafka, missing, 3, timeout_s=2) == [f"topic {missing} does not exist"]
    proc = _worker(kafka, prefix, 3, tmp_path / "a")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the stream worker refuses to start" in proc.stderr, proc.stderr
    assert f"topic {raw} has message.timestamp.type=CreateTime" in proc.stderr, proc.stderr
    assert "must be LogAppendTime (run `tuyen topics apply`)" in proc.stderr, proc.stderr
    wrong = _worker(kafka, prefix, 12, tmp_path / "b", "--allow-create-time")
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert f"topic {raw} has 3 partitions, the worker is configured for 12" in wrong.stderr
    assert "LogAppendTime" not in wrong.stderr  # waived for a replay
    # `tuyen topics apply` brings the existing topic to LogAppendTime
    apply_topics(kafka, topic_specs(prefix, 3))
    assert raw_topic_problems(kafka, raw, 3) == []
    resource = ConfigResource(ConfigResource.Type.TOPIC, raw)
    described = client.describe_configs([resource])[resource].result(30)
    assert described["message.timestamp.type"].value == "LogAppendTime"


def test_an_output_the_broker_refuses_is_dead_lettered_and_the_rest_goes_on(
    kafka: KafkaConnection, unique: Callable[[str], str]
) -> None:
    """The national output is too large for its topic (``max.message.bytes`` made small):
    that event is dead-lettered ``output_rejected`` (stage ``publish``), the other events and
    the event's other outputs are published, and nothing raises."""
    prefix = unique("refuse") + "."
    national = topic_name(TIER_NATIONAL, prefix)
    specs = [
        replace(s, config={"max.message.bytes": "1800"}) if s.name == national else s
        for s in topic_specs(prefix, 1, record_topics="single")
    ]
    apply_topics(kafka, specs)
    f = EventFactory(seed=KEY_SEED)
    config = StreamsConfig(
        kafka=kafka,
        development=True,
        pseudonym_key=DEV_PSEUDONYM_KEY,
        topic_prefix=prefix,
        partitions=1,
        verify_processes=0,
    )
    runtime = StreamsRuntime(config, keys=DevKeyRegistry(KEY_SEED.encode()))
    # uncompressed, so that the topic's limit applies to the record as it is
    runtime.publisher = BatchPublisher(kafka, **{"compression.type": "none"})
    try:
        processor = BatchProcessor(  # the development shape: one tier.district topic
            runtime.validator, runtime.pseudonymiser, topic_prefix=prefix, record_topics="single"
        )
        runtime.processor = processor
        small = f.message(f.change("bed_snapshot", station="00367"))
        items = [
            {"medicine": code, "on_hand": 10, "stock_out": False}
            for code in sorted(codes.ESSENTIAL_MEDICINES) * 3
        ]
        stock = f.change("stock_snapshot", station="00367")
        assert stock.data is not None
        big = f.message(  # a snapshot passes to the national tier whole: well over 1800 bytes
            f.change("stock_snapshot", station="00367", data={**stock.data, "items": items})
        )
        now = datetime.now(UTC)
        msgs = [
            RawMessage(m.key, m.value, m.headers, topic_name(RAW, prefix), 0, i, now)
            for i, m in enumerate([small, big])
        ]
        out = processor.process(msgs)
        assert out.accepted == 2
        sizes = [len(m.value or b"") for m in out.outputs if m.topic == national]
        assert sizes[0] < 1000 < 3000 < sizes[1], sizes
        asyncio.run(runtime.publish(out.outputs, []))  # (no internal delta topic here)
        dlq = _read(kafka, topic_name(DLQ, prefix), 1)
        assert [header_value(m.headers(), H_REASON) for m in dlq] == ["output_rejected"]  # type: ignore[attr-defined]
        assert header_value(dlq[0].headers(), H_STAGE) == "publish"  # type: ignore[attr-defined]
        assert dlq[0].value() == big.value  # type: ignore[attr-defined]
        assert len(_read(kafka, topic_name(TIER_DISTRICT, prefix), 2)) == 2
        assert runtime.stats["rejected.output_rejected"] == 1
    finally:
        runtime.close()
