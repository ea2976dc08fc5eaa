"""The on-disk record state (RocksDB through rocksdict, as faust's store opens it) behaves like
the in-memory one, and writes reach the disk only on commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from rocksdict import Options, Rdict

from schemas import DevKeyRegistry, KafkaMessage
from schemas.hierarchy import Hierarchy
from streams.diskstate import DiskState
from streams.pipeline import BatchProcessor
from streams.pseudonymise import Pseudonymiser
from streams.state import MemoryState, StateStore
from streams.validate import RawMessage, Validator
from tests.data.bad_inputs import KEY_SEED, EventFactory, bad_inputs
from tests.unit.streams.test_validate import raw


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[Callable[[int], Rdict]]:
    opened: dict[int, Rdict] = {}

    def db_for(partition: int) -> Rdict:
        if partition not in opened:
            opened[partition] = Rdict(
                str(tmp_path / f"records-{partition}.db"), options=Options(raw_mode=True)
            )
        return opened[partition]

    yield db_for
    for db in opened.values():
        db.close()


def test_changes_reach_the_database_only_on_commit(dbs: Callable[[int], Rdict]) -> None:
    state = DiskState(dbs)
    s1 = {"v": 1, "d": False, "ids": [["e1", "sig"]], "c": None}
    state.put("r1", s1, 3)
    assert state.get("r1", 3) == s1
    assert dbs(3).get(b'"r1"') is None
    changes = state.drain()
    assert changes == [("r1", orjson.dumps(s1), 3)]
    assert state.get("r1", 3) == s1 and len(state) == 1  # drained, not yet written
    assert dbs(3).get(b'"r1"') is None
    state.commit(changes)
    assert dbs(3).get(b'"r1"') == orjson.dumps(s1) and len(state) == 0
    assert DiskState(dbs).get("r1", 3) == s1  # read back from disk by a fresh front


def test_reads_the_changelog_layout_of_earlier_versions(dbs: Callable[[int], Rdict]) -> None:
    s1 = {"v": 2, "d": False, "ids": [], "c": None}
    dbs(0).put(b'"r1"', orjson.dumps(orjson.dumps(s1).decode()))  # JSON text in a JSON string
    assert DiskState(dbs).get("r1", 0) == s1


def _stream() -> list[KafkaMessage]:
    """New records, corrections, redeliveries, deletes, then the bad-input corpus."""
    f = EventFactory()
    out: list[KafkaMessage] = list(f.valid(20))
    for i in range(30):
        v1 = f.change("encounter")
        hid = v1.record_id.split(":")[0]
        out.append(f.message(v1))
        if i % 3 == 0:
            v2 = f.change(
                "encounter", health_id=hid, record_id=v1.record_id, version=2, when=v1.time
            )
            out += [f.message(v2), f.message(v2)]
        if i % 2 == 0:
            d = f.change(
                "encounter", health_id=hid, record_id=v1.record_id, version=3, op="delete",
                when=v1.time,
            )  # fmt: skip
            out.append(f.message(d))
    for case in bad_inputs(f):
        out += [*case.setup, case.message]
    return out


def _run(state: StateStore, batches: list[list[RawMessage]], now: datetime) -> list[object]:
    validator = Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode()))
    p = BatchProcessor(validator, Pseudonymiser("k"), topic_prefix="t.", state=state)
    seen: list[object] = []
    for batch in batches:
        out = p.process(batch, now)
        state.commit(out.state)
        seen.append(([tuple(o) for o in out.outputs], out.deltas, out.accepted, out.duplicates))
        seen.append(dict(out.rejected))
    return seen


def test_same_verdicts_and_outputs_as_the_memory_state(dbs: Callable[[int], Rdict]) -> None:
    msgs = raw(_stream())
    batches = [msgs[i : i + 7] for i in range(0, len(msgs), 7)]
    now = datetime.now(UTC)
    expected = _run(MemoryState(), batches, now)
    assert _run(DiskState(dbs), batches, now) == expected
    counts = [x for x in expected if isinstance(x, tuple)]
    assert sum(c[3] for c in counts) >= 10  # redeliveries seen as duplicates
    rejected = set().union(*(x for x in expected if isinstance(x, dict)))
    assert {"replay_stale_version", "duplicate_event", "delete_unknown_record"} <= rejected


def test_changes_written_in_write_batches_are_the_same(dbs: Callable[[int], Rdict]) -> None:
    """``DiskState(write=batch_writer(...))`` (the worker's: one RocksDB write batch per
    partition and batch) writes what put by put writes."""
    from rocksdict import WriteBatch

    from streams.diskstate import batch_writer

    state = DiskState(dbs, write=batch_writer(dbs, lambda: WriteBatch(raw_mode=True)))
    s1, s2 = {"v": 1, "d": False, "ids": [], "c": None}, {"v": 2, "d": True, "ids": [], "c": None}
    state.put("r1", s1, 3)
    state.put("r2", s2, 1)
    state.put("r3", s2, 3)
    changes = state.drain()
    assert dbs(3).get(b'"r1"') is None
    state.commit(changes)
    assert len(state) == 0
    assert dbs(3).get(b'"r1"') == orjson.dumps(s1) and dbs(3).get(b'"r3"') == orjson.dumps(s2)
    assert dbs(1).get(b'"r2"') == orjson.dumps(s2) and dbs(1).get(b'"r1"') is None
    assert DiskState(dbs).get("r3", 3) == s2
