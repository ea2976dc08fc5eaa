"""Fail closed, with the real commands: without trust anchors `tuyen streams worker` stops and
names the missing setting; with real anchors (no development mode) it verifies against the
registry, so development-signed events are dead-lettered; and a Kafka connection whose
credentials the broker refuses fails at once with the reason."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from deploy.settings import kafka_env
from deploy.topics import apply_topics
from schemas import DevKeyRegistry, StaticKeyRegistry
from schemas.dlq import H_REASON, header_value
from schemas.kafka import KafkaConnection, KafkaUnreachable, check_connection
from schemas.keys import DEV_KEY_SEED
from schemas.topics import topic_specs
from streams.national import national_event_id
from streams.pseudonym_key import decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser
from tests.data.bad_inputs import EventFactory
from tests.helpers import wait_until
from tests.integration.test_streams import PARTITIONS, ROOT, TopicReader, produce

pytestmark = pytest.mark.broker

TUYEN = str(Path(sys.executable).with_name("tuyen"))
REAL_SEED = "the-stations-own-keys-not-the-published-seed"
ANCHORS = ("TUYEN_DEV", "TUYEN_KEY_REGISTRY", "TUYEN_PSEUDONYM_KEY", "TUYEN_PSEUDONYM_KEY_FILE")


def bare_env(**extra: str) -> dict[str, str]:
    """This environment without development mode or any trust anchor, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ANCHORS}
    return {**env, **extra}


def registry(path: Path, seed: str, signers: tuple[str, ...]) -> Path:
    keys = DevKeyRegistry(seed.encode())
    found = [keys.lookup(s) for s in signers]
    path.write_bytes(StaticKeyRegistry([k for k in found if k is not None]).to_json())
    return path


def worker(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TUYEN, "streams", "worker", "--bootstrap", "127.0.0.1:1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_worker_refuses_to_start_without_its_trust_anchors(tmp_path: Path) -> None:
    missing = worker([], bare_env())
    assert missing.returncode == 2
    assert "TUYEN_KEY_REGISTRY is not set: the stream worker needs" in missing.stderr
    assert "--dev" in missing.stderr

    real = registry(tmp_path / "keys.json", REAL_SEED, ("hw-00004-1",))
    no_key = worker([], bare_env(TUYEN_KEY_REGISTRY=str(real)))
    assert no_key.returncode == 2
    assert "TUYEN_PSEUDONYM_KEY is not set" in no_key.stderr

    key_file = tmp_path / "pseudonym_key"
    key_file.write_text("replace-me-with-a-long-random-secret\n")
    example = worker(
        [], bare_env(TUYEN_KEY_REGISTRY=str(real), TUYEN_PSEUDONYM_KEY_FILE=str(key_file))
    )
    assert example.returncode == 2
    assert "TUYEN_PSEUDONYM_KEY is refused: it is a published value" in example.stderr

    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    dev_keys = registry(tmp_path / "dev.json", DEV_KEY_SEED.decode(), ("hw-00004-1",))
    forged = worker(
        [], bare_env(TUYEN_KEY_REGISTRY=str(dev_keys), TUYEN_PSEUDONYM_KEY_FILE=str(key_file))
    )
    assert forged.returncode == 2
    assert "holds development keys" in forged.stderr and "hw-00004-1" in forged.stderr


@pytest.mark.slow
def test_a_worker_with_real_anchors_rejects_development_signatures(
    kafka: KafkaConnection, unique: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique("closed") + "."
    apply_topics(kafka, topic_specs(prefix, PARTITIONS, record_topics="single"))
    real = registry(tmp_path / "keys.json", REAL_SEED, ("hw-00004-1", "hw-00004-2"))
    key_file = tmp_path / "pseudonym_key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    station = EventFactory(seed=REAL_SEED)
    thief = EventFactory()  # the published development seed
    good = [station.message(station.change(station="00004", signer="hw-00004-1"))]
    forged = [
        thief.message(thief.change(station="00004", signer="hw-00004-1")),  # registered signer
        thief.message(thief.change(station="00367", signer="hw-00367-1")),  # unregistered
    ]
    produce(kafka, prefix + "station.changes", [*forged, *good])
    env = kafka_env(kafka, bare_env())
    env.update(TUYEN_KEY_REGISTRY=str(real), TUYEN_PSEUDONYM_KEY_FILE=str(key_file))
    env["TUYEN_RECORD_TOPICS"] = "single"
    log = tmp_path / "worker.log"
    args = ["--topic-prefix", prefix, "--partitions", str(PARTITIONS), "--web-port", "0",
            "--session-timeout", "6", "--data-dir", str(tmp_path / "data"),
            "--no-create-topics"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    reader = TopicReader(kafka, [prefix + "tier.national", prefix + "station.changes.dlq"])
    try:

        def done() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            got = reader.poll()
            return len(got[prefix + "station.changes.dlq"]) >= 2 and bool(
                got[prefix + "tier.national"]
            )

        wait_until(done, timeout=120, message=lambda: "outputs\n" + log.read_text(errors="replace"))
        got = reader.poll()
        reasons = {header_value(m.headers(), H_REASON) for m in got[prefix + "station.changes.dlq"]}
        assert reasons == {"tampered", "signer_not_registered"}
        accepted = {header_value(m.headers(), "ce_id") for m in got[prefix + "tier.national"]}
        key = Pseudonymiser(decode_pseudonym_key(key_file.read_text().strip()))
        assert accepted == {national_event_id(dict(good[0].headers)["ce_id"].decode(), key)}
        assert "DEVELOPMENT MODE" not in log.read_text(errors="replace")
    finally:
        reader.close()
        proc.terminate()
        proc.wait(60)


def test_refused_credentials_fail_at_once_with_the_reason(kafka: KafkaConnection) -> None:
    """The SASL broker comes later; a plaintext listener refuses any SASL handshake."""
    wrong = KafkaConnection(
        bootstrap=kafka.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="tuyen-streams",
        sasl_password=SecretStr("not-the-password"),
    )
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable) as caught:
        check_connection(wrong, timeout_s=30)
    assert time.monotonic() - started < 15  # not the timeout: the refusal is final
    message = str(caught.value)
    assert (
        f"Kafka at {kafka.bootstrap} as 'tuyen-streams' (SASL_PLAINTEXT SCRAM-SHA-512)" in message
    )
    assert "refused the credentials" in message and "SASL" in message
    assert "not-the-password" not in message

    env = kafka_env(wrong, os.environ)
    cli = subprocess.run(
        [TUYEN, "topics", "apply"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert cli.returncode == 1
    assert "refused the credentials" in cli.stderr
