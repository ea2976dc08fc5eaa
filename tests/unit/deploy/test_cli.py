"""The `tuyen` command: every job listed, settings read once, development-only jobs refused
outside development mode, a clear message when the pipeline extra is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import deploy.cli.root
from deploy.cli.extras import missing_extra_message
from deploy.cli.root import app
from deploy.settings import Settings

JOBS = {
    "broker", "topics", "schemas", "publish", "simulate", "streams", "aggregates", "sink",
    "compact", "catalog", "report", "portal", "lag", "monitor", "demo",
}  # fmt: skip


def test_help_lists_every_job() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ")}
    assert listed >= JOBS | {"--dev"}


def test_settings_are_read_once_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = Settings.load

    def counting(**overrides: object) -> Settings:
        calls.append(overrides)
        return real(**overrides)

    monkeypatch.setattr(deploy.cli.root.Settings, "load", counting)
    result = CliRunner().invoke(app, ["--dev", "topics", "list"])
    assert result.exit_code == 0, result.output
    assert calls == [{"dev": True}]


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--to", "jsonl", "--file", "x.jsonl"),
        ("demo", "--days", "1"),
        ("publish", "--file", "{file}", "--dev-keys", "--dry-run"),
        ("streams", "worker", "--allow-create-time"),  # replays trust the producers' clocks
        ("report", "submit", "--station", "00004", "--period", "2026-10", "--dev-keys"),
        (
            "report",
            "approve",
            "--station",
            "00004",
            "--period",
            "2026-10",
            "--as",
            "district:KV001",
            "--dev-keys",
        ),
        (
            "report",
            "send-back",
            "--station",
            "00004",
            "--period",
            "2026-10",
            "--as",
            "district:KV001",
            "--reason",
            "x",
            "--dev-keys",
        ),
        (
            "report",
            "lock",
            "--province",
            "01",
            "--period",
            "2026-10",
            "--as",
            "province:01",
            "--dev-keys",
        ),
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_development_jobs_need_development_mode(args: tuple[str, ...], tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("")
    argv = [a.replace("{file}", str(events)) for a in args]
    refused = CliRunner().invoke(app, argv, env={"TUYEN_DEV": "0"})
    assert refused.exit_code == 2, refused.output
    assert "--dev" in refused.output and "development" in refused.output


def test_simulate_in_development_mode(tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    args = ["--dev", "simulate", "--to", "jsonl", "--file", str(out), "-n", "1", "--days", "1"]
    result = CliRunner().invoke(app, args, env={"TUYEN_DEV": "0"})
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_choices_are_checked_by_the_parser() -> None:
    result = CliRunner().invoke(app, ["--dev", "simulate", "--to", "paper"])
    assert result.exit_code == 2
    assert "paper" in result.output and "kafka" in result.output


def test_missing_extra_message() -> None:
    message = missing_extra_message(ModuleNotFoundError("no", name="duckdb.experimental"))
    assert message is not None and "pip install 'tuyen[pipeline]'" in message
    assert missing_extra_message(ModuleNotFoundError("no", name="nacl")) is None
