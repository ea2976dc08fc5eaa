"""Fault: SIGKILL of the broker mid-stream, publishing on through the outage, then a restart.

The run has its own single-node broker (data in the test's temp folder) so that killing it
touches no other test. The workers and sinks are *not* restarted: they must ride out the
outage and resume by themselves once the broker is back on the same ports with its data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from deploy.broker.local import LocalBroker
from deploy.settings import Settings
from tests.faults.harness import (
    DLQ_VIEW_BUG,
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
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    broker = LocalBroker(tmp_path_factory.mktemp("broker") / "broker", settings.home)
    state = broker.start(tie_to_parent=True)
    events, _ = simulated(
        13, start=date.today() - timedelta(days=6), days=5, n_stations=5, bad_fraction=0.02
    )
    out = [from_sim(e) for e in events]
    exp = Expectation()
    exp.add(out)
    before, during, after = phases(out, 0.5, 0.3)
    fp = start_run(state.bootstrap, tmp_path_factory, "broker-kill")
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
        dead = fp.wait_lag_zero_or_dead_sink(log_at_kill)
        alive = {n: s.alive for n, s in fp.pipeline.services.items()}
        sinks_proc = fp.pipeline.services["sinks"].proc
        sinks_exit = sinks_proc.poll() if sinks_proc is not None else None
        if dead:  # an operator restarts the stalled sinks: the stores must still be exact
            fp.pipeline.services["sinks"].kill()
            fp.pipeline.services["sinks"].start()
        fp.wait_caught_up(timeout_s=150)
        measured = {
            "published_before_kill": len(before),
            "stream_committed_at_kill": committed,
            "same_bootstrap": restarted.bootstrap == state.bootstrap,
            "broker_down_s": round(down_s, 1),
            "recovery_s": round(time.monotonic() - killed_at, 1),
            "services_alive": alive,
            "dead_sink_threads": dead,
            "sinks_exit_code": sinks_exit,
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

    @pytest.mark.xfail(
        strict=True,
        raises=AssertionError,
        reason="BUG (sinks/consumer.py SinkRunner._commit): a synchronous commit during the "
        "outage raises KafkaException _WAIT_COORD ('Waiting for coordinator'), uncaught, "
        "which kills that sink's thread: while another sink thread lives the `tuyen sink` "
        "process stays up with a sink that never consumes again (silent stall, lag never "
        "back to zero); when all threads died the process exits with code 0 (a supervisor "
        "sees a clean exit). Either way only a restart brings the sinks back",
    )
    def test_sinks_resumed_by_themselves_after_the_outage(self, result: FaultResult) -> None:
        assert result.measured["dead_sink_threads"] == []
        assert result.measured["services_alive"]["sinks"]

    def test_each_bad_input_once_in_the_dlq_view(self, result: FaultResult) -> None:
        """Whether the worker loses its last commit to the outage (and replays) depends on
        timing, so the dlq-view bug shows here only sometimes: xfail when it does (the
        worker-kill run pins it with a strict xfail)."""
        if result.check.dlq_view_duplicates:
            pytest.xfail(f"{result.check.dlq_view_duplicates} dead letters twice: {DLQ_VIEW_BUG}")
