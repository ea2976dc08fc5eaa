"""StationClient against a real broker: nothing accepted is lost, neither when the publishing
process is killed with SIGKILL nor when the broker goes away for a while."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

from deploy.broker import LocalBroker
from deploy.settings import Settings, kafka_env
from producers.config import ProducerConfig
from producers.sdk import StationClient
from schemas.examples import example_data
from schemas.kafka import KafkaConnection, consumer
from schemas.payloads.clinical import EncounterV2
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from producers.config import ProducerConfig
    from producers.sdk import StationClient
    from schemas.examples import example_data
    from deploy.settings import Settings
    from schemas.payloads.clinical import EncounterV2

    topic, outbox, ids_path, mode = sys.argv[1:5]
    kafka = Settings.load().kafka_connection()  # KAFKA_BOOTSTRAP and TUYEN_KAFKA_*
    cfg = ProducerConfig(kafka=kafka, topic=topic, outbox_path=Path(outbox))
    client = StationClient.dev("00004", cfg)
    if mode == "drain":
        left = client.flush(45)
        client.close(1)
        sys.exit(0 if left == 0 else 1)
    payload = EncounterV2.model_validate(example_data("encounter"))
    t = datetime(2025, 1, 15, 3, tzinfo=UTC)
    with open(ids_path, "a") as ids:
        for b in range(100000):
            with client.batch():
                acc = [client.upsert_encounter(payload, time=t) for _ in range(50)]
            ids.write("".join(a.event_id + "\\n" for a in acc))
            ids.flush()
            client.poll(0)
    """
)


def _consume_ids(
    kafka: KafkaConnection, topic: str, want: set[str], timeout: float = 45
) -> list[str]:
    reader = consumer(
        kafka,
        {
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        },
    )
    reader.subscribe([topic])
    seen: list[str] = []
    values: dict[str, bytes] = {}

    def done() -> bool:
        for m in reader.consume(5000, 0.5):
            if m.error() is None:
                raw = dict(m.headers() or [])["ce_id"]
                eid = raw.decode() if isinstance(raw, bytes) else str(raw)
                value = m.value() or b""
                assert values.setdefault(eid, value) == value  # duplicates are identical
                seen.append(eid)
        return want <= set(seen)

    try:
        wait_until(done, timeout=timeout, interval=0, message="every accepted id consumed")
    finally:
        reader.close()
    return seen


def test_sigkill_mid_run_loses_nothing(
    kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("sigkill", partitions=3)
    outbox, ids_path = tmp_path / "outbox.db", tmp_path / "ids.txt"
    args = [sys.executable, "-c", CHILD, topic, str(outbox), str(ids_path)]
    env = kafka_env(kafka, os.environ)
    child = subprocess.Popen([*args, "run"], cwd=ROOT, env=env)
    try:
        wait_until(
            lambda: ids_path.exists() and ids_path.read_text().count("\n") >= 3000,
            timeout=40,
            message="child accepted 3000 events",
        )
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    accepted = set(ids_path.read_text().split())
    drain = subprocess.run([*args, "drain"], cwd=ROOT, env=env, timeout=60, check=False)
    assert drain.returncode == 0, "the restarted client could not deliver its outbox"
    seen = _consume_ids(kafka, topic, accepted)
    assert accepted <= set(seen)


def test_broker_outage_loses_nothing(tmp_path: Path, settings: Settings) -> None:
    broker = LocalBroker(tmp_path / "broker", settings.home, heap="384m")
    local = KafkaConnection(bootstrap=broker.start(tie_to_parent=True).bootstrap)
    try:
        topic = f"outage-{uuid.uuid4().hex[:8]}"
        cfg = ProducerConfig(
            kafka=local,
            topic=topic,
            outbox_path=tmp_path / "outbox.db",
            message_timeout_ms=3000,  # short: timed-out rows go back to pending and are resent
            reconnect_backoff_max_ms=500,
        )
        payload = EncounterV2.model_validate(example_data("encounter"))
        client = StationClient.dev("00004", cfg)
        accepted: list[str] = []

        def publish(n: int) -> None:
            with client.batch():
                accepted.extend(client.upsert_encounter(payload).event_id for _ in range(n))

        publish(500)
        assert client.flush(30) == 0
        broker.stop()
        publish(500)  # accepted while the broker is down

        def gave_up() -> bool:
            client.poll(0.1)
            return client.publisher.failed_total > 0

        wait_until(
            gave_up,
            timeout=30,
            message="librdkafka gave up on the first messages",
        )
        publish(500)
        assert client.pending == 1000
        broker.start(tie_to_parent=True)
        assert client.flush(45) == 0
        client.close()
        seen = _consume_ids(local, topic, set(accepted))
        assert set(accepted) <= set(seen)
    finally:
        broker.stop()
