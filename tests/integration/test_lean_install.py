"""`pip install tuyen` without extras: a station vendor's install. In a fresh virtualenv it
signs and publishes an event with the SDK to the real broker, and the pipeline's dependencies
(DuckDB, faust, RocksDB bindings, testcontainers …) are not there; the `tuyen` command says
which extra it needs instead of a traceback.

A real install: the project is built into a wheel from a copy of its sources (no stale
``build/``) and installed with ``pip -c constraints.txt`` (PyPI, or pip's cache).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas import SignerKey, StaticKeyRegistry, decode, verify
from schemas.kafka import KafkaConnection, consumer
from tests.helpers import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_ONLY = ("duckdb", "faust", "rocksdict", "testcontainers", "pyarrow", "aiokafka",
                 "typer", "rich", "pydantic_settings", "numpy", "mode", "msgspec")  # fmt: skip

STATION = """
import base64, importlib.util, json, os, sys
from pathlib import Path
from nacl.signing import SigningKey
from producers.config import ProducerConfig
from producers.sdk import StationClient
from schemas.examples import example_data
from schemas.kafka import KafkaConnection
from schemas.payloads.clinical import EncounterV2

topic, outbox = sys.argv[1:3]
kafka = KafkaConnection.model_validate_json(os.environ["LEAN_TEST_KAFKA"])
key = SigningKey.generate()
cfg = ProducerConfig(kafka=kafka, topic=topic, outbox_path=Path(outbox))
client = StationClient.open("00004", "hw-00004-9", key, cfg)
accepted = client.upsert_encounter(EncounterV2.model_validate(example_data("encounter")))
left = client.flush(60)
client.close()
print(json.dumps({
    "event_id": accepted.event_id,
    "left": left,
    "public_key": base64.b64encode(bytes(key.verify_key)).decode(),
    "importable": [m for m in sys.argv[3:] if importlib.util.find_spec(m) is not None],
}))
"""


def _revealed(kafka: KafkaConnection) -> str:
    """The connection as JSON with its secrets (for the child's environment only)."""
    fields = {
        k: v.get_secret_value() if isinstance(v, SecretStr) else v
        for k, v in kafka.model_dump().items()
    }
    return json.dumps(fields)


def _lean_venv(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in ("schemas", "producers", "streams", "sinks", "deploy"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp / "wheels"), str(src)],
                   check=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp / "wheels").glob("tuyen-*.whl")
    env_dir = tmp / "lean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", "install",
         "-c", str(ROOT / "constraints.txt"), str(wheel)],
        check=True,
        timeout=600,
    )  # fmt: skip
    return env_dir


def test_the_sdk_alone_signs_and_publishes_without_the_pipeline(
    kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    env_dir = _lean_venv(tmp_path)
    topic = make_topic("lean", partitions=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["LEAN_TEST_KAFKA"] = _revealed(kafka)
    run = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", STATION, topic, str(tmp_path / "outbox.db"),
         *PIPELINE_ONLY],
        cwd=tmp_path,  # not the source tree: only what was installed
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["left"] == 0
    assert report["importable"] == []  # none of the pipeline's dependencies came with it

    reader = consumer(kafka, {"group.id": f"lean-{os.getpid()}", "auto.offset.reset": "earliest"})
    reader.subscribe([topic])
    try:
        msg = wait_until(
            lambda: next((m for m in reader.consume(10, 0.5) if m.error() is None), None),
            timeout=30,
            message="the station's event on the topic",
        )
    finally:
        reader.close()
    headers = msg.headers()
    assert isinstance(headers, list)
    change = decode(msg.value() or b"", headers)
    assert change.id == report["event_id"]
    pub = SignerKey("hw-00004-9", "00004", base64.b64decode(report["public_key"]))
    verify(change, StaticKeyRegistry([pub]))  # signed by the station's own key

    tuyen = subprocess.run(
        [str(env_dir / "bin" / "tuyen"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tuyen.returncode == 2
    assert "needs the pipeline extra" in tuyen.stderr
    assert "pip install 'tuyen[pipeline]'" in tuyen.stderr
    assert "Traceback" not in tuyen.stderr
