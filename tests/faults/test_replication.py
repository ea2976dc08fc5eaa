"""Replication faults on the shared three-broker cluster (RF 3, min.insync.replicas 2) while
stations publish (acks=all, idempotent) and the whole pipeline runs, watched by `tuyen
monitor serve`: SIGKILL of the leader of the busiest partitions, a rolling restart of all
three brokers, SIGKILL of the active controller, one broker paused (SIGSTOP) until it drops
out of the ISR and then resumed.

After each: every valid event is in every store exactly once, every bad one in the DLQ once
(:class:`StoreContract`), no acknowledged event lost (the stores hold every event the
producer had confirmed), and the monitor showed the fault while it lasted and cleared after.
What each fault did to lag and freshness is written to ``test-artifacts/faults/`` and
reported in docs/operators.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.broker.cluster import LocalCluster
from schemas.topics import RAW, topic_name
from tests.faults.checks import FaultResult, StoreContract
from tests.faults.pipeline import FaultPipeline
from tests.faults.replication import (
    Fault,
    ReplicationRun,
    active_controller,
    busiest_leader,
    nothing_to_recover,
    rolling_restart,
)
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def _kill_busiest_leader(cluster: LocalCluster, fp: FaultPipeline) -> dict[str, Any]:
    node, partitions = busiest_leader(fp.kafka, topic_name(RAW, fp.prefix))
    cluster.kill(node)
    return {"node": node, "partitions": partitions}


def _kill_controller(cluster: LocalCluster, fp: FaultPipeline) -> dict[str, Any]:
    node = active_controller(cluster)
    cluster.kill(node)
    return {"node": node}


def _pause_follower(cluster: LocalCluster, fp: FaultPipeline) -> dict[str, Any]:
    """Pause a broker that is not the active controller (that fault has its own test)."""
    controller = active_controller(cluster)
    state = cluster.state()
    assert state is not None
    node = next(n.node_id for n in state.nodes if n.node_id != controller)
    cluster.pause(node)
    return {"node": node, "controller": controller}


def _restart(cluster: LocalCluster, hit: dict[str, Any]) -> None:
    cluster.start_node(hit["node"])


def _resume(cluster: LocalCluster, hit: dict[str, Any]) -> None:
    cluster.resume(hit["node"])


def _dropped_out_of_isr(s: dict[str, Any]) -> bool:
    return s["urp"] > 0 or s["jmx_urp"] > 0


class ReplicationContract(StoreContract):
    """What every replication fault must show besides the stores."""

    def test_no_acknowledged_event_lost(self, result: FaultResult) -> None:
        """Every event the producer had confirmed (acks=all) is in every tier store."""
        assert result.measured["valid"] > 0
        assert {t: v[:3] for t, v in result.check.missing.items() if v} == {}

    def test_monitor_showed_under_replication_while_the_fault_lasted(
        self, result: FaultResult
    ) -> None:
        m = result.measured
        assert m["urp_max"] > 0 or m["jmx_urp_max"] > 0, m
        assert m["lag_max"] > 0, m

    def test_events_published_during_the_fault_reached_the_tiers(self, result: FaultResult) -> None:
        """Publish → district tier topic, per phase (the report's freshness figures)."""
        phases = result.measured["publish_to_tier_s"]
        assert phases["during"]["n"] > 0 and phases["before"]["n"] > 0, phases

    def test_monitor_cleared_after(self, result: FaultResult) -> None:
        """Checked by the run itself (it waits for a clean snapshot: every group OK, no
        under-replicated or offline partition, every broker up); here its timing."""
        assert result.measured["cleared_after_recovery_s"] >= 0
        assert result.measured["monitor_exit"] is None, "the monitor process died"


@pytest.fixture(scope="module")
def run(
    kafka_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[ReplicationRun]:
    """One pipeline for the four faults (it starts once); each class runs its fault on it."""
    shared = ReplicationRun(kafka_cluster, tmp_path_factory, artifacts_dir, faults=4)
    shared.start()
    yield shared
    shared.stop()


class TestLeaderKill(ReplicationContract):
    """SIGKILL of the broker leading the busiest raw partitions, restarted later."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, run: ReplicationRun) -> FaultResult:
        fault = Fault("leader-kill", _kill_busiest_leader, _restart)
        return run.run(fault)

    def test_the_killed_node_led_the_busiest_partition(self, result: FaultResult) -> None:
        assert result.measured["hit"]["partitions"]


class TestRollingRestart(ReplicationContract):
    """Every broker in turn: SIGTERM (controlled shutdown), start, wait until whole."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, run: ReplicationRun) -> FaultResult:
        fault = Fault("rolling-restart", rolling_restart, nothing_to_recover)
        return run.run(fault)

    def test_every_node_was_restarted(self, result: FaultResult) -> None:
        assert sorted(result.measured["hit"]["nodes"]) == [1, 2, 3]


class TestControllerKill(ReplicationContract):
    """SIGKILL of the active controller (a combined node: a broker goes too)."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, run: ReplicationRun) -> FaultResult:
        fault = Fault(
            "controller-kill",
            _kill_controller,
            _restart,
            lambda s: _dropped_out_of_isr(s) and s["controller"] not in (None,),
        )
        return run.run(fault)

    def test_another_node_took_over_as_controller(
        self, result: FaultResult, kafka_cluster: LocalCluster
    ) -> None:
        assert result.measured["hit"]["node"] in (1, 2, 3)
        assert wait_until(lambda: active_controller(kafka_cluster), timeout=30) in (1, 2, 3)


class TestPausedBroker(ReplicationContract):
    """SIGSTOP of a follower broker until it drops out of the ISR, then SIGCONT."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, run: ReplicationRun) -> FaultResult:
        fault = Fault("broker-pause", _pause_follower, _resume, _dropped_out_of_isr)
        return run.run(fault)

    def test_the_paused_broker_dropped_out_of_the_isr_and_came_back(
        self, result: FaultResult
    ) -> None:
        """Out of the ISR: its partitions under-replicated while it was frozen (the leaders'
        ISR-shrink counters are reported, not asserted: a frozen node's exporter cannot be
        read and counters restart with their broker)."""
        m = result.measured
        assert m["urp_max"] > 0 or m["jmx_urp_max"] > 0, m
        assert m["hit"]["node"] != m["hit"]["controller"]
