"""`tuyen publish`: validate every line first, publish all or nothing (or --skip-bad)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from typer.testing import CliRunner

from deploy.cli.root import app
from producers.config import SimulationConfig
from producers.simulator import simulate
from producers.writers import write_jsonl
from schemas.kafka import KafkaConnection
from tests.integration.test_station_client import _consume_ids

CFG = SimulationConfig(seed=5, provinces=("02",), n_stations=2, start="2025-02-01", days=6,
                       scale=0.02, bad_fraction=0.05)  # fmt: skip


def test_publish_all_or_nothing(
    kafka_bootstrap: str, kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    result = simulate(CFG)
    path = tmp_path / "events.jsonl"
    write_jsonl(result.events, path)
    bad = len(result.truth.bad_event_ids)
    assert bad > 0
    topic = make_topic("publish")
    runner = CliRunner()
    env = {"KAFKA_BOOTSTRAP": kafka_bootstrap}
    args = ["publish", "--file", str(path), "--topic", topic, "--dev-keys"]

    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 1, refused.output
    assert "nothing published" in refused.output and "tampered" in refused.output

    dry = runner.invoke(app, [*args, "--dry-run", "--skip-bad"], env=env)
    assert dry.exit_code == 0, dry.output

    ok = runner.invoke(app, [*args, "--skip-bad"], env=env)
    assert ok.exit_code == 0, ok.output
    summary = orjson.loads(ok.stdout.strip().splitlines()[-1])
    valid = result.truth.valid_event_ids
    assert summary == {"published": len(valid), "skipped": bad}
    assert set(_consume_ids(kafka, topic, valid)) == valid


def test_publish_reports_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"not": "an event"}\n\nnot json\n')
    out = CliRunner().invoke(app, ["publish", "--file", str(path), "--dry-run"])
    assert out.exit_code == 1
    assert "not_json" in out.output and "schema_violation" in out.output
