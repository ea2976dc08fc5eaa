"""Fault: SIGKILL of the sinks process (all five sinks) mid-stream, then a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.kafka import KafkaConnection
from tests.faults.checks import FaultResult, StoreContract, finish
from tests.faults.pipeline import kill_and_restart, start_run
from tests.faults.traffic import kill_run_traffic

pytestmark = [pytest.mark.slow, pytest.mark.broker]


@pytest.fixture(scope="module")
def result(
    kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    exp, before, during, after = kill_run_traffic(12, bad_fraction=0.02)
    fp = start_run(kafka, tmp_path_factory, "sink-kill")
    try:  # the worker keeps filling the tier topics while the sinks are down
        at_kill, sent, recovery_s = kill_and_restart(
            fp,
            "sinks",
            before,
            during,
            after,
            fp.publish_until_sinks_mid_stream,
        )
        measured = {
            "published_before_kill": sent,
            "sink_committed_at_kill": at_kill,
            "recovery_s": round(recovery_s, 1),
        }
        yield finish(fp, exp, artifacts_dir, "sink_kill", measured)
    finally:
        fp.stop()


class TestSinksSigkill(StoreContract):
    """SIGKILL of the sinks process while segments are open, restart, catch up: the
    restarted sinks seek back to each open segment's start and rewrite the same files."""
