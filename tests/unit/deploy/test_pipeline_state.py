"""The demo's pipeline on a new broker starts from no worker state (a worker's local table
state from an earlier broker names changelog offsets the new broker never had, and faust
refuses to start on it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deploy.exceptions import DeployError
from deploy.pipeline import Pipeline, Service
from schemas.kafka import KafkaConnection


def _pipeline(tmp_path: Path, prefix: str) -> Pipeline:
    return Pipeline(
        kafka=KafkaConnection(bootstrap="unused:9092"),
        prefix=prefix,
        store_root=tmp_path / "store",
        log_dir=tmp_path / "logs",
        home=tmp_path / "home",
        workers=2,
    )


def test_forget_local_state_removes_only_this_pipelines_workers(tmp_path: Path) -> None:
    mine, other = _pipeline(tmp_path, ""), _pipeline(tmp_path, "other.")
    mine.build()
    dirs = [mine.worker_data_dir(n) for n in ("worker-1", "worker-2")]
    kept = other.worker_data_dir("worker-1")
    for d in [*dirs, kept]:
        (d / "tables").mkdir(parents=True)
        (d / "tables" / "offsets").write_text("10892")
    assert all(str(d) in mine.services[d.name].argv for d in dirs)

    mine.forget_local_state()
    mine.forget_local_state()  # nothing left: still fine

    assert not any(d.exists() for d in dirs)
    assert (kept / "tables" / "offsets").read_text() == "10892"


def _failing(tmp_path: Path, restarts: int) -> Pipeline:
    """A pipeline of one service that exits 3 at once (a real process, no broker)."""
    p = Pipeline(
        kafka=KafkaConnection(bootstrap="unused:9092"),
        prefix="",
        store_root=tmp_path / "store",
        log_dir=tmp_path / "logs",
        home=tmp_path / "home",
        restarts=restarts,
    )
    argv = [sys.executable, "-c", "import sys; print('flush timed out'); sys.exit(3)"]
    p.services = {"worker-1": Service("worker-1", argv, {}, tmp_path / "logs" / "w.log")}
    return p


def _exited(p: Pipeline) -> bool:
    proc = p.services["worker-1"].proc
    return proc is not None and proc.wait(30) is not None


def test_a_service_that_exits_is_an_error_without_supervision(tmp_path: Path) -> None:
    p = _failing(tmp_path, restarts=0)
    p.start()
    assert _exited(p)
    with pytest.raises(DeployError, match=r"(?s)worker-1 exited with 3.*flush timed out"):
        p.check_alive()
    assert p.restarted == {}


def test_a_supervised_service_is_restarted_up_to_its_limit(tmp_path: Path) -> None:
    """Each exit on its own is restarted (and counted) until ``restarts``; the next is an
    error naming the service, its exit code and its log."""
    p = _failing(tmp_path, restarts=2)
    p.start()
    for n in (1, 2):
        assert _exited(p)
        p.check_alive()
        assert p.restarted == {"worker-1": n}
    assert _exited(p)
    with pytest.raises(DeployError, match="worker-1 exited with 3"):
        p.check_alive()
    assert (tmp_path / "logs" / "w.log").read_text().count("flush timed out") == 3


def test_sink_split_runs_those_sinks_in_processes_of_their_own(tmp_path: Path) -> None:
    p = _pipeline(tmp_path, "x.")
    assert list(p.sink_processes()) == ["sinks"]  # one process: threads beside each other
    p.sink_split = (("district",), ("province", "national"))
    procs = p.sink_processes()
    assert {k: v[1] for k, v in procs.items()} == {
        "sinks-district": ["district"],
        "sinks-province-national": ["province", "national"],
        "sinks": ["aggregates", "dlq", "signoff"],
    }
    p.build()
    argv = p.services["sinks-province-national"].argv
    assert argv[argv.index("sink") + 1 :][:2] == ["province", "national"]


def test_a_service_runs_at_its_niceness(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os; print('nice', os.nice(0))"]
    base = os.nice(0)
    svc = Service("s", argv, dict(os.environ), tmp_path / "s.log", nice=5)
    svc.start()
    assert svc.proc is not None and svc.proc.wait(30) == 0
    assert f"nice {min(19, base + 5)}" in svc.log_path.read_text()
    p = _pipeline(tmp_path, "")
    p.sink_nice = 5
    p.build()
    assert {s.nice for n, s in p.services.items() if n.startswith("sink")} == {5}
    assert {s.nice for n, s in p.services.items() if n.startswith("worker")} == {0}
