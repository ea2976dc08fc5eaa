"""Fault: SIGKILL of the broker mid-stream, publishing on through the outage, then a restart.

The run has its own single-node broker (data in the test's temp folder) so that killing it
touches no other test. The workers and sinks are *not* restarted: they must ride out the
outage and resume by themselves once the broker is back on the same ports with its data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.broker.local import LocalBroker
from deploy.exceptions import DeployError
from deploy.settings import Settings
from schemas.kafka import KafkaConnection
from tests.faults.checks import FaultResult, StoreContract, finish
from tests.faults.pipeline import start_run
from tests.faults.traffic import kill_run_traffic

pytestmark = [pytest.mark.slow, pytest.mark.broker]


@pytest.fixture(scope="module")
def result(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    broker = LocalBroker(tmp_path_factory.mktemp("broker") / "broker", settings.home)
    state = broker.start(tie_to_parent=True)
    exp, before, during, after = kill_run_traffic(13, bad_fraction=0.02)
    fp = start_run(KafkaConnection(bootstrap=state.bootstrap), tmp_path_factory, "broker-kill")
    try:
        fp.start()
        fp.publisher.send(before)
        fp.publisher.flush()
        committed = fp.wait_streams_mid_batch(len(before))
        log_at_kill = fp.log_size("sinks")
        broker.kill()
        killed_at = time.monotonic()
        fp.publisher.send(during)  # queued in the producer while the broker is down
        restarted = broker.start(tie_to_parent=True)
        down_s = time.monotonic() - killed_at
        fp.publisher.send(after)
        fp.publisher.flush()
        try:  # nobody restarts anything: the sinks must resume by themselves
            fp.wait_caught_up(timeout_s=150)
            not_caught_up = None
        except (AssertionError, DeployError) as exc:
            not_caught_up = str(exc)[:4000]
        dead = fp.dead_threads("sinks", log_at_kill)
        alive = {n: s.alive for n, s in fp.pipeline.services.items()}
        sinks_proc = fp.pipeline.services["sinks"].proc
        sinks_exit = sinks_proc.poll() if sinks_proc is not None else None
        sinks_log = fp.pipeline.services["sinks"].log_path.read_text("utf-8", "replace")
        measured = {
            "published_before_kill": len(before),
            "stream_committed_at_kill": committed,
            "same_bootstrap": restarted.bootstrap == state.bootstrap,
            "broker_down_s": round(down_s, 1),
            "recovery_s": round(time.monotonic() - killed_at, 1),
            "services_alive": alive,
            "dead_sink_threads": dead,
            "sinks_exit_code": sinks_exit,
            "not_caught_up": not_caught_up,
            "sink_commit_retries": sinks_log.count("sink commit failed, will retry"),
        }
        yield finish(fp, exp, artifacts_dir, "broker_kill", measured)
    finally:
        fp.stop()
        broker.stop()


class TestBrokerSigkill(StoreContract):
    """SIGKILL of the broker while the worker is mid-stream, restart with the same data."""

    def test_broker_came_back_on_the_same_address(self, result: FaultResult) -> None:
        assert result.measured["same_bootstrap"]

    def test_stream_worker_survived_the_outage(self, result: FaultResult) -> None:
        assert result.measured["services_alive"]["worker-1"], result.measured

    def test_sinks_resumed_by_themselves_after_the_outage(self, result: FaultResult) -> None:
        """No restart: commits failing during the outage are retried, no sink thread dies,
        the process stays up and every group gets back to the end of its input."""
        m = result.measured
        assert m["not_caught_up"] is None, m["not_caught_up"]
        assert m["dead_sink_threads"] == []
        assert m["services_alive"]["sinks"], m
        assert m["sinks_exit_code"] is None
