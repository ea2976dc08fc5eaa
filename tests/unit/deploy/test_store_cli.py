"""`tuyen sink`: a sink that fails stops the process with a non-zero exit code."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

import deploy.cli.common
import sinks.consumer
from deploy.cli.root import app
from sinks.config import SinkConfig
from sinks.consumer import SinkStats


class _Writer:
    files_written = 0


class _Runner:
    """Stands in for SinkRunner: ``dlq`` fails at once, the others run until stopped."""

    stopped: ClassVar[list[str]] = []

    def __init__(self, config: SinkConfig, erasure: object = None) -> None:
        self.config = config
        self.stats = SinkStats()
        self.writer = _Writer()

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> SinkStats:
        if self.config.name == "dlq":
            raise RuntimeError("disk on fire")
        stop.wait(30)
        _Runner.stopped.append(self.config.name)
        return self.stats


def test_a_dead_sink_thread_stops_the_process_with_code_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks.consumer, "SinkRunner", _Runner)
    monkeypatch.setattr(deploy.cli.common, "check_connection", lambda *a, **k: None)  # no broker
    result = CliRunner().invoke(
        app,
        ["sink", "district", "dlq", "--bootstrap", "127.0.0.1:1", "--root", str(tmp_path)],
    )
    assert result.exit_code == 1, result.output
    assert _Runner.stopped == ["district"]  # the healthy sink was stopped, not abandoned
