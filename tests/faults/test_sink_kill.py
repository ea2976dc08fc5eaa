"""Fault: SIGKILL of the sinks process (all five sinks) mid-stream, then a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    FaultResult,
    StoreContract,
    finish,
    kill_run_traffic,
    start_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker]


@pytest.fixture(scope="module")
def result(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    exp, before, during, after = kill_run_traffic(12, bad_fraction=0.02)
    fp = start_run(kafka_bootstrap, tmp_path_factory, "sink-kill")
    try:
        fp.start()
        fp.publisher.send(before)
        fp.publisher.flush()
        at_kill = fp.wait_sinks_mid_stream()
        sinks = fp.pipeline.services["sinks"]
        sinks.kill()
        killed_at = time.monotonic()
        fp.publisher.send(during)  # the worker keeps filling the tier topics meanwhile
        fp.publisher.flush()
        sinks.start()
        fp.publisher.send(after)
        fp.publisher.flush()
        fp.wait_caught_up()
        measured = {
            "published_before_kill": len(before),
            "sink_committed_at_kill": at_kill,
            "recovery_s": round(time.monotonic() - killed_at, 1),
        }
        yield finish(fp, exp, artifacts_dir, "sink_kill", measured)
    finally:
        fp.stop()


class TestSinksSigkill(StoreContract):
    """SIGKILL of the sinks process while segments are open, restart, catch up: the
    restarted sinks seek back to each open segment's start and rewrite the same files."""
