"""The faust app as built by the factory (no broker needed: nothing connects until it runs)."""

from __future__ import annotations

from pathlib import Path

from mode import CrashingSupervisor

from streams.app import build_app
from streams.config import StreamsConfig
from streams.pseudonym_key import DEV_PSEUDONYM_KEY


def _app(tmp_path: Path, **overrides: object) -> object:
    config = StreamsConfig.model_validate(
        {
            "kafka": {"bootstrap": "unused:9092"},
            "development": True,
            "pseudonym_key": DEV_PSEUDONYM_KEY,
            "verify_processes": 0,
            "web_enabled": False,
            "data_dir": str(tmp_path),
            **overrides,
        }
    )
    return build_app(config)


def test_a_crashing_agent_stops_the_worker(tmp_path: Path) -> None:
    app: object = _app(tmp_path)
    agents = app.agents  # type: ignore[attr-defined]
    assert {a.name.rsplit(".", 1)[-1] for a in agents.values()} >= {"validate", "count"}
    for agent in agents.values():
        assert agent.supervisor_strategy is CrashingSupervisor


def test_record_state_store_follows_the_config(tmp_path: Path) -> None:
    from faust.stores.memory import Store as MemoryStore
    from faust.stores.rocksdb import Store as RocksStore

    disk = _app(tmp_path / "a").tables["records"]  # type: ignore[attr-defined]
    assert isinstance(disk.data, RocksStore) and disk.data.use_rocksdict
    assert disk.data.rocksdb_options.block_cache_size == 8 << 20
    assert str(disk.data.partition_path(3)).startswith(str(tmp_path / "a"))
    memory = _app(tmp_path / "b", state_store="memory").tables["records"]  # type: ignore[attr-defined]
    assert isinstance(memory.data, MemoryStore)
    counters = _app(tmp_path / "c").tables["counters"]  # type: ignore[attr-defined]
    assert isinstance(counters.data, MemoryStore)
