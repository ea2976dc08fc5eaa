"""The demo's pipeline on a new broker starts from no worker state (a worker's local table
state from an earlier broker names changelog offsets the new broker never had, and faust
refuses to start on it)."""

from __future__ import annotations

from pathlib import Path

from deploy.pipeline import Pipeline
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
