"""Fault: SIGKILL of the sinks process (all five sinks) mid-stream, then a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.faults.harness import (
    Expectation,
    FaultResult,
    StoreContract,
    finish,
    from_sim,
    phases,
    simulated,
    start_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker]


@pytest.fixture(scope="module")
def result(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    events, _ = simulated(
        12, start=date.today() - timedelta(days=6), days=5, n_stations=5, bad_fraction=0.02
    )
    out = [from_sim(e) for e in events]
    exp = Expectation()
    exp.add(out)
    before, during, after = phases(out, 0.5, 0.3)
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
