"""Parts of open segments: the order of commits, writes and removals (sinks.parts.CutOrder)
driven with a fake broker, and a crash at every step — then a restarted writer that resumes
from what the fake broker had committed ends with every event exactly once on disk once it
has caught up, and with no part left once its segments have closed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks import store as store_module
from sinks.encode import tier_encoder
from sinks.parts import Commit, Cut, CutOrder, SegmentMark, parse_segment_metadata
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record

TOPIC = "tier.province"
N = 48


class Crash(Exception):
    """The process dies here."""


@dataclass
class Budget:
    """Counts the steps (commits, file writes, file removals); raises :class:`Crash` at
    step ``crash_at`` (never if None)."""

    crash_at: int | None = None
    steps: int = 0

    def tick(self) -> None:
        self.steps += 1
        if self.crash_at is not None and self.steps >= self.crash_at:
            raise Crash


@dataclass(frozen=True)
class CrashingStore(Store):
    budget: Budget = field(default_factory=Budget)

    def write_table(self, path: str, table: pa.Table, *, sync_dir: bool = True) -> int:
        self.budget.tick()
        return super().write_table(path, table, sync_dir=sync_dir)

    def delete(self, path: str) -> None:
        self.budget.tick()
        super().delete(path)


@dataclass
class FakeBroker:
    """The committed offset and metadata of each partition."""

    budget: Budget
    committed: dict[int, tuple[int, str]] = field(default_factory=dict)
    log: list[Commit] = field(default_factory=list)

    def commit(self, commits: Sequence[Commit]) -> bool:
        self.budget.tick()
        for c in commits:
            self.committed[c.partition] = (c.offset, c.metadata)
            self.log.append(c)
        return True


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _messages(n: int = N) -> list[FakeMessage]:
    """Rows over four directories (two provinces × two record types)."""
    out = []
    for i in range(n):
        rt = "person" if i % 3 == 0 else "encounter"
        rec = tier_record(rt, n=i, event_id=f"e{i}", province="01" if i % 2 else "79")
        out.append(FakeMessage.of(TOPIC, 0, i, rec))
    return out


def _writer(
    root: Path,
    budget: Budget,
    broker: FakeBroker,
    clock: Clock,
    rotate: int,
    age: float = 7.0,
    block: int = 4096,
    threads: int = 1,
) -> SegmentWriter:
    base = Store.open(root)
    store = CrashingStore(base.uri, base.fs, base.base, budget)
    return SegmentWriter(
        store=store,
        topic=TOPIC,
        encoder=tier_encoder("province"),
        rotate_rows=rotate,
        max_age_s=age,
        flush_interval_s=2.0,
        clock=clock,
        commit=broker.commit,
        part_rows=block,
        write_threads=threads,  # one: the crash points are the same in every run
    )


def _run(w: SegmentWriter, msgs: Sequence[FakeMessage], batch: int, clock: Clock) -> None:
    for i in range(0, len(msgs), batch):
        w.add(0, msgs[i : i + batch])
        clock.now += 1.0
        w.flush_due()


def _rows(root: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for p in root.rglob("*.parquet"):
        ids.update(str(e) for e in pq.read_table(p, columns=["event_id"])["event_id"].to_pylist())
    return ids


def _parts(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.parquet") if p.name.count(".") > 2)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*.tmp"))


def _resume(
    root: Path, broker: FakeBroker, batch: int, rotate: int, block: int = 4096
) -> SegmentWriter:
    """A new process: resume from the committed offset and metadata, seek back, catch up
    (its segments close by count only: what the crashed one left must be gone already)."""
    clock = Clock()
    broker.budget = Budget()  # the broker lives on; the new process crashes no more
    w = _writer(root, broker.budget, broker, clock, rotate, age=1e6, block=block)
    msgs = _messages()
    if 0 in broker.committed:
        offset, metadata = broker.committed[0]
        mark = parse_segment_metadata(metadata)
        assert mark is not None
        w.resume(0, mark.start, committed=offset, mark=mark)
        msgs = msgs[mark.start :]
    _run(w, msgs, batch, clock)
    w.flush_due(force=True)
    return w


def test_the_order_intent_write_remove_commit(tmp_path: Path) -> None:
    """The steps, in order, for parts and a close by age, with a fake broker and a store
    that logs."""
    events: list[str] = []

    @dataclass(frozen=True)
    class LoggingStore(Store):
        def write_table(self, path: str, table: pa.Table, *, sync_dir: bool = True) -> int:
            events.append(f"write {Path(path).name}")
            return super().write_table(path, table, sync_dir=sync_dir)

        def delete(self, path: str) -> None:
            events.append(f"delete {Path(path).name}")
            super().delete(path)

    def commit(commits: Sequence[Commit]) -> bool:
        events.extend(f"commit {c.offset} {c.metadata}" for c in commits)
        return True

    base = Store.open(tmp_path)
    order = CutOrder(TOPIC, commit, lambda _d: LoggingStore(base.uri, base.fs, base.base))
    table = pa.table({"x": [1]})
    order.run([Cut(0, 10, 10, 10, 12, False, {"a": table}, intent=False)])
    order.run([Cut(0, 10, 10, 12, 15, False, {"a": table}, intent=False)])  # the block again
    order.run([Cut(0, 10, 10, 15, 20, True, {"a": table}, intent=True)])
    assert events == [
        f"write {TOPIC}+0+10.10.parquet",
        "commit 12 tuyen-seg=10",
        f"write {TOPIC}+0+10.10.parquet",
        "commit 15 tuyen-seg=10",
        "commit 15 tuyen-seg=10;close=20",
        f"write {TOPIC}+0+10.parquet",
        f"delete {TOPIC}+0+10.10.parquet",
        "commit 20 tuyen-seg=20",
    ]


@pytest.mark.parametrize("threads", [1, 4])
def test_a_flush_syncs_each_directory_once_before_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Two partitions' parts in the same two directories: four files, each fsynced and
    renamed, then one fsync per directory, all before the commit of their offsets."""
    events: list[str] = []
    real = store_module._fsync_dir

    def fsync_dir(directory: str) -> None:
        events.append(f"sync {Path(directory).name}")
        real(directory)

    monkeypatch.setattr(store_module, "_fsync_dir", fsync_dir)
    base = Store.open(tmp_path)
    for d in ("a", "b"):  # existing directories: a new one's parents are synced with it
        (tmp_path / d).mkdir()

    def commit(commits: Sequence[Commit]) -> bool:
        events.extend(f"commit {c.partition}@{c.offset}" for c in commits)
        return True

    order = CutOrder(TOPIC, commit, lambda _d: base, threads)
    table = pa.table({"x": [1]})
    cuts = [Cut(p, 0, 0, 0, 5, False, {"a": table, "b": table}, intent=False) for p in (0, 1)]
    order.run(cuts)
    assert sorted(events[:2]) == ["sync a", "sync b"]
    assert events[2:] == ["commit 0@5", "commit 1@5"]
    assert order.files_written == 4
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == sorted(
        f"{TOPIC}+{p}+0.0.parquet" for p in (0, 0, 1, 1)
    )


def test_an_intent_the_broker_does_not_take_writes_nothing(tmp_path: Path) -> None:
    base = Store.open(tmp_path)
    order = CutOrder(TOPIC, lambda _c: False, lambda _d: base)
    table = pa.table({"x": [1]})
    untimed = Cut(1, 0, 0, 0, 5, True, {"b": table}, intent=False)  # a close by count
    done = order.run([Cut(0, 0, 0, 0, 5, True, {"a": table}), untimed])  # by age
    assert done == [untimed]
    assert [p.name for p in tmp_path.rglob("*.parquet")] == [f"{TOPIC}+1+0.parquet"]


@pytest.mark.parametrize(
    "metadata, mark",
    [
        ("tuyen-seg=7", SegmentMark(7)),
        ("tuyen-seg=7;close=30", SegmentMark(7, 30, closing=True)),
        ("tuyen-seg=7;part=12", SegmentMark(7)),
        ("tuyen-seg=7;later=1", SegmentMark(7)),
        ("tuyen-seg=x", None),
        ("other", None),
        (None, None),
    ],
)
def test_metadata(metadata: str | None, mark: SegmentMark | None) -> None:
    assert parse_segment_metadata(metadata) == mark
    if metadata in ("tuyen-seg=7", "tuyen-seg=7;close=30") and mark is not None:
        assert Commit(0, 0, mark.start, mark.cut_end, mark.closing).metadata == metadata


def test_parts_while_open_one_file_per_directory_at_close(tmp_path: Path) -> None:
    broker = FakeBroker(Budget())
    clock = Clock()
    w = _writer(tmp_path, Budget(), broker, clock, rotate=1000)
    _run(w, _messages(), 4, clock)  # flushes every 2 s, closes by age every 7 s
    w.flush_due(force=True)
    assert _rows(tmp_path) == Counter(f"e{i}" for i in range(N)) and _parts(tmp_path)
    clock.now += 100
    w.flush_due()
    assert _parts(tmp_path) == []
    names = {p.name for p in tmp_path.rglob("*.parquet")}
    assert len(names) == len({c.segment_start for c in broker.log} - {N}) == 2
    assert w.parts_removed > 0
    assert _rows(tmp_path) == Counter(f"e{i}" for i in range(N))
    assert broker.committed[0] == (N, f"tuyen-seg={N}")


def test_files_written_together_are_the_files_written_one_by_one(tmp_path: Path) -> None:
    files = {}
    for threads in (1, 4):
        root = tmp_path / str(threads)
        clock = Clock()
        w = _writer(root, Budget(), FakeBroker(Budget()), clock, rotate=10, threads=threads)
        _run(w, _messages(), 5, clock)
        w.flush_due(force=True)
        files[threads] = {
            str(p.relative_to(root)): pq.read_table(p).to_pylist() for p in root.rglob("*.parquet")
        }
        assert w.files_written >= len(files[threads]) > 4
    assert files[1] == files[4]


def test_a_flushed_block_is_kept_as_one_batch_of_one_chunk_per_column(tmp_path: Path) -> None:
    """Each flush gathers its blocks' batches into one (each column one chunk): the next
    flush of the block and the close start from it; the files hold the same rows."""
    clock = Clock()
    w = _writer(tmp_path, Budget(), FakeBroker(Budget()), clock, rotate=1000, age=1e6, block=10)
    _run(w, _messages(), 3, clock)  # a flush every 2 s, a batch of 3 every 1 s
    seg = w._segments[0]
    starts = [first for first, _tables in seg.batches]
    assert starts == sorted(starts)
    flushed = [first for first in starts if first < seg.written]
    assert flushed == sorted({first // 10 * 10 for first in flushed})  # one batch per block
    for first, tables in seg.batches:
        if first < seg.written:
            assert all(t.column(c).num_chunks == 1 for t in tables.values() for c in t.schema.names)
    w.flush_due(force=True)
    assert _rows(tmp_path) == Counter(f"e{i}" for i in range(N))


def test_blocks_name_the_parts(tmp_path: Path) -> None:
    """Parts are blocks of ``part_rows`` offsets from the segment start, whatever the flushes:
    48 rows flushed one by one in blocks of 10 are five parts per directory, rewritten as
    they fill; another batching writes the same files."""
    files = []
    for batch in (1, 7):
        root = tmp_path / str(batch)
        clock = Clock()
        w = _writer(root, Budget(), FakeBroker(Budget()), clock, rotate=1000, age=1e6, block=10)
        _run(w, _messages(), batch, clock)
        w.flush_due(force=True)
        assert sorted(set(_parts(root))) == [f"{TOPIC}+0+0.{b}.parquet" for b in range(0, N, 10)]
        assert _rows(root) == Counter(f"e{i}" for i in range(N))
        files.append({str(p.relative_to(root)): pq.read_table(p) for p in root.rglob("*.parquet")})
    assert files[0] == files[1]


@settings(max_examples=80, deadline=None)
@given(
    crash_at=st.integers(1, 200),
    batch=st.integers(1, 9),
    rotate=st.integers(5, 40),
    second_batch=st.integers(1, 9),
    block=st.integers(1, 30),
)
def test_crash_at_any_step_then_resume_every_event_once(
    tmp_path_factory: pytest.TempPathFactory,
    crash_at: int,
    batch: int,
    rotate: int,
    second_batch: int,
    block: int,
) -> None:
    """Killed at any commit, file write or part removal (parts cut by time, segments closed
    by count and by age), restarted from the fake broker's committed offset and metadata
    with another batching: every event exactly once on disk once caught up, and no part
    left once every segment has closed."""
    root = tmp_path_factory.mktemp("crash")
    budget = Budget(crash_at)
    broker = FakeBroker(budget)
    clock = Clock()
    w = _writer(root, budget, broker, clock, rotate, block=block)
    try:
        _run(w, _messages(), batch, clock)
        w.flush_due(force=True)
    except Crash:
        pass
    w2 = _resume(root, broker, second_batch, rotate, block)
    assert _rows(root) == Counter(f"e{i}" for i in range(N))
    assert _leftovers(root) == []
    w2.clock = lambda: 1e7  # later: every segment closes by age
    w2.flush_due()
    assert _parts(root) == []
    assert _rows(root) == Counter(f"e{i}" for i in range(N))
