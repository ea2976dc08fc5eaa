"""The checkpoint order (outputs → changelog → disk → ack) driven with fakes.

- the exact sequence of calls for one batch, and with a failure injected at each step: the
  failing call is the last one made (steps after it are not done);
- outputs the broker refuses for themselves: retried alone, then dead-lettered;
- a worker's life with a failure at step N, then a restart that restores the state from the
  changelog and resumes from the committed offsets: every event reaches every tier (no loss)
  and the live counters equal the failure-free run's and the recomputation (no double count).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import DevKeyRegistry, encode
from schemas.hierarchy import Hierarchy
from schemas.tier import load_tier_record
from streams.aggregate import LiveCounters, recompute
from streams.checkpoint import Checkpoint, StateChanges
from streams.diskstate import DiskState
from streams.exceptions import OutputError
from streams.output import Refused
from streams.pipeline import BatchOutput, BatchProcessor, OutMessage
from streams.pseudonymise import Pseudonymiser
from streams.validate import RawMessage, Validator
from tests.data.bad_inputs import KEY_SEED, STATIONS, EventFactory
from tests.unit.streams.test_validate import raw

CHANGELOG = "records-changelog"
DELTAS = "aggregate-deltas"
STEPS = (1, 2, 3, 4)


class Crash(Exception):
    """The failure a test injects."""


@dataclass
class FakeProducer:
    """Records every call in ``log``; a flush delivers what was produced since the last one
    to ``topics``. ``fail_flush``: the flush (counted from 0) that delivers only half of its
    messages and raises; ``refuse``: topics whose messages come back refused."""

    log: list[tuple[Any, ...]]
    topics: dict[str, list[tuple[bytes | None, bytes | None, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    fail_flush: int | None = None
    refuse: frozenset[str] = frozenset()
    pending: list[tuple[str, bytes | None, bytes | None, int | None]] = field(default_factory=list)
    flushes: int = 0

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        self.log.append(("produce", topic, partition))
        self.pending.append((topic, key, value, partition))

    def produce_many(self, messages: Iterable[OutMessage]) -> None:
        for topic, key, value, headers, _origin in messages:
            self.produce(topic, value, key, headers)

    def produce_partitioned(
        self, topic: str, messages: Iterable[tuple[bytes | None, bytes | None, int]]
    ) -> None:
        for key, value, partition in messages:
            self.produce(topic, value, key, None, partition)

    def flush(self, timeout_s: float = 60.0) -> list[Refused]:
        self.log.append(("flush",))
        n, self.flushes = self.flushes, self.flushes + 1
        pending, self.pending = self.pending, []
        if n == self.fail_flush:
            for topic, key, value, partition in pending[: len(pending) // 2]:
                self.topics[topic].append((key, value, partition))
            raise OutputError("injected: the broker went away mid-flush")
        refused = []
        for topic, key, value, partition in pending:
            if topic in self.refuse:
                refused.append(Refused(topic, key, value, "MSG_SIZE_TOO_LARGE"))
            else:
                self.topics[topic].append((key, value, partition))
        return refused


def _checkpoint(
    producer: FakeProducer, fail_step: int | None = None, dead_letters: Any = None
) -> Checkpoint[str]:
    log = producer.log
    if fail_step == 1:
        producer.fail_flush = 0
    if fail_step == 2:
        producer.fail_flush = 1

    def write_state(changes: StateChanges) -> None:
        log.append(("disk", [k for k, _v, _p in changes]))
        if fail_step == 3:
            raise Crash("disk")

    async def ack(events: Sequence[str]) -> None:
        log.append(("ack", list(events)))
        if fail_step == 4:
            raise Crash("ack")

    return Checkpoint(
        producer,
        changelog=CHANGELOG,
        write_state=write_state,
        ack=ack,
        deltas_topic=DELTAS,
        dead_letters=dead_letters,
    )


def _batch() -> BatchOutput:
    return BatchOutput(
        outputs=[
            OutMessage("t.changes.valid", b"k1", b"v1", []),
            OutMessage("t.station.changes.dlq", b"k2", b"v2", []),
        ],
        deltas=[(1, {"sp": 3, "units": {}, "e": []})],
        state=[("r1", b"{}", 3), ("r2", b"{}", 5)],
    )


FULL_SEQUENCE = [
    ("produce", "t.changes.valid", None),  # step 1: outputs and deltas, then one flush
    ("produce", "t.station.changes.dlq", None),
    ("produce", DELTAS, 1),
    ("flush",),
    ("produce", CHANGELOG, 3),  # step 2: the changelog (explicit partitions), flush
    ("produce", CHANGELOG, 5),
    ("flush",),
    ("disk", ["r1", "r2"]),  # step 3: the store
    ("ack", ["e1", "e2"]),  # step 4: the input events
]
#: index of each step's last call in FULL_SEQUENCE (the call that fails when it is injected)
LAST_CALL = {1: 3, 2: 6, 3: 7, 4: 8}


def test_one_batch_runs_the_four_steps_in_order() -> None:
    producer = FakeProducer([])
    asyncio.run(_checkpoint(producer).commit(_batch(), ["e1", "e2"]))
    assert producer.log == FULL_SEQUENCE
    assert producer.topics[CHANGELOG] == [(b'"r1"', b"{}", 3), (b'"r2"', b"{}", 5)]


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_a_step_leaves_the_later_steps_undone(step: int) -> None:
    producer = FakeProducer([])
    with pytest.raises((OutputError, Crash)):
        asyncio.run(_checkpoint(producer, step).commit(_batch(), ["e1", "e2"]))
    assert producer.log == FULL_SEQUENCE[: LAST_CALL[step] + 1]
    if step <= 2:  # nothing written to the store, nothing acked
        assert not [c for c in producer.log if c[0] in ("disk", "ack")]
    if step == 1:  # the changelog never saw the batch
        assert CHANGELOG not in producer.topics


def test_each_step_is_timed() -> None:
    producer = FakeProducer([])
    checkpoint = _checkpoint(producer)
    for _ in range(2):
        asyncio.run(checkpoint.commit(_batch(), ["e1", "e2"]))
    timing = checkpoint.timing
    steps = ("outputs_s", "changelog_s", "flush_s", "handoff_s", "disk_s", "ack_s")
    assert set(timing) == set(steps)
    assert all(timing[k] >= 0 for k in steps)
    assert timing["flush_s"] <= timing["outputs_s"] + timing["changelog_s"]


def test_an_empty_batch_is_still_acked_and_writes_no_state() -> None:
    producer = FakeProducer([])
    asyncio.run(_checkpoint(producer).commit(BatchOutput(), ["e1"]))
    assert producer.log == [("flush",), ("ack", ["e1"])]


def test_overlapped_checkpoints_run_one_at_a_time_in_batch_order() -> None:
    """``begin`` returns before any step ran; the next begins only once it is settled; a
    failure is raised by every later ``settle`` and reported to ``on_failure`` once."""
    producer = FakeProducer([])
    checkpoint = _checkpoint(producer)
    done: list[str] = []

    async def two_batches() -> None:
        checkpoint.begin(_batch(), ["e1", "e2"], lambda: done.append("b1"))
        assert producer.log == [] and done == []  # nothing ran yet: the caller goes on
        with pytest.raises(RuntimeError, match="in flight"):
            checkpoint.begin(_batch(), ["e3"])
        await checkpoint.settle()
        assert producer.log == FULL_SEQUENCE and done == ["b1"]
        checkpoint.begin(_batch(), ["e3"], lambda: done.append("b2"))
        await checkpoint.settle()
        await checkpoint.settle()  # nothing in flight: returns

    asyncio.run(two_batches())
    assert [c for c in producer.log if c[0] == "ack"] == [("ack", ["e1", "e2"]), ("ack", ["e3"])]
    assert done == ["b1", "b2"]


@pytest.mark.parametrize("step", STEPS)
def test_an_overlapped_checkpoint_that_fails_stops_every_later_one(step: int) -> None:
    producer = FakeProducer([])
    checkpoint = _checkpoint(producer, step)
    failures: list[BaseException] = []
    checkpoint.on_failure = failures.append

    async def life() -> None:
        checkpoint.begin(_batch(), ["e1", "e2"], lambda: failures.append(Crash("then ran")))
        for _ in range(5):  # the checkpoint fails while the caller waits elsewhere
            await asyncio.sleep(0)
        assert len(failures) == 1 and isinstance(failures[0], (OutputError, Crash))
        for _ in range(2):
            with pytest.raises((OutputError, Crash)):
                await checkpoint.settle()
        with pytest.raises(RuntimeError, match="in flight"):
            checkpoint.begin(_batch(), ["e3"])

    asyncio.run(life())
    assert producer.log == FULL_SEQUENCE[: LAST_CALL[step] + 1]  # nothing after, nothing of e3


def test_the_next_batch_sees_the_changes_of_one_not_yet_written_to_disk() -> None:
    """Overlapped, batch k+1's stage 2 runs before batch k's step 3: it reads k's changed
    states from the store's pending changes (a correction is judged against k's version, a
    replay of k's event is a duplicate); k's write to disk leaves k+1's pending."""
    f = EventFactory(rng=random.Random(3))
    first = f.change("encounter", station=STATIONS[0])
    kwargs = {"station": first.station, "health_id": first.key, "record_id": first.record_id}
    data = {**(first.data or {}), "encounter_type": "inpatient"}
    second = f.change("encounter", version=2, data=data, **kwargs)  # type: ignore[arg-type]
    b1, b2 = raw([encode(first)]), raw([encode(second), encode(first)], start=1)
    disk: dict[int, DB] = defaultdict(DB)
    state = DiskState(disk.__getitem__)
    processor = BatchProcessor(
        Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode())),
        Pseudonymiser("k"),
        topic_prefix="t.",
        aggregate_partitions=3,
        state=state,
    )
    out1 = processor.process(b1)
    out2 = processor.process(b2)  # batch 1 not on disk yet
    assert not any(disk.values())
    assert (out1.accepted, out2.accepted, out2.duplicates, dict(out2.rejected)) == (1, 1, 1, {})
    assert [orjson.loads(v)["v"] for _k, v, _p in out2.state] == [2]
    state.commit(out1.state)  # batch 1's step 3: batch 2's change stays readable
    ((key, v2, partition),) = out2.state
    assert state.get(key, partition) == orjson.loads(v2)
    state.commit(out2.state)
    assert disk[partition][orjson.dumps(key)] == v2 and len(state) == 0


def test_a_refused_output_is_retried_alone_then_dead_lettered() -> None:
    producer = FakeProducer([], refuse=frozenset({"t.tier.national"}))
    origin = RawMessage(b"k", b"raw", [], "t.station.changes", 0, 7, datetime.now(UTC))
    out = BatchOutput(
        outputs=[
            OutMessage("t.tier.district", b"k", b"d", [], origin),
            OutMessage("t.tier.national", b"k", b"n" * 10, [], origin),
        ]
    )
    letters: list[list[tuple[OutMessage, str]]] = []

    def dead_letters(refused: Sequence[tuple[OutMessage, str]], now: datetime) -> list[OutMessage]:
        letters.append(list(refused))
        return [OutMessage("t.dlq", m.key, b"letter", [], m.origin) for m, _e in refused]

    checkpoint = _checkpoint(producer, dead_letters=dead_letters)
    asyncio.run(checkpoint.commit(out, ["e1"]))
    assert producer.log == [
        ("produce", "t.tier.district", None),
        ("produce", "t.tier.national", None),
        ("flush",),  # the national output refused
        ("produce", "t.tier.national", None),  # a. alone
        ("flush",),  # refused again
        ("produce", "t.dlq", None),  # b. its input dead-lettered
        ("flush",),
        ("ack", ["e1"]),
    ]
    assert [(m.topic, e) for m, e in letters[0]] == [("t.tier.national", "MSG_SIZE_TOO_LARGE")]
    assert producer.topics["t.dlq"] == [(b"k", b"letter", None)]
    assert checkpoint.stats == Counter({"rejected.output_rejected": 1})


def test_a_refused_aggregate_fails_the_batch() -> None:
    """An output of no single input (a live aggregate) cannot be dead-lettered: the batch
    fails before anything is acked."""
    producer = FakeProducer([], refuse=frozenset({"t.aggregates.live"}))
    out = BatchOutput(outputs=[OutMessage("t.aggregates.live", b"01|2025-10|x", b"{}", [])])
    with pytest.raises(OutputError, match=r"aggregates\.live"):
        asyncio.run(_checkpoint(producer).commit(out, ["e1"]))
    assert ("ack", ["e1"]) not in producer.log


# --- a worker's life: a failure at step N, a restart, nothing lost, nothing counted twice ---


class DB(dict[bytes, bytes]):
    """A partition database (``rocksdict.Rdict`` in raw mode: get / put)."""

    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


@dataclass
class Cluster:
    """What outlives a worker: the topics, the committed offsets, the partition databases."""

    producer: FakeProducer = field(default_factory=lambda: FakeProducer([]))
    committed: dict[int, int] = field(default_factory=dict)
    disk: dict[int, DB] = field(default_factory=lambda: defaultdict(DB))


def _changes() -> list[RawMessage]:
    """Signed changes: new records, then corrections and deletes of some of them."""
    rng = random.Random(11)
    f = EventFactory(rng=random.Random(11))
    now = datetime.now(UTC)
    changes = [
        f.change(rt, station=rng.choice(STATIONS[:-1]), when=now - timedelta(days=i % 20))
        for i, rt in enumerate(["encounter", "immunization", "chronic_followup", "birth"] * 5)
    ]
    for i, c in enumerate(changes[:12]):
        kwargs = {"station": c.station, "health_id": c.key, "record_id": c.record_id}
        if i % 3 == 0:
            changes.append(f.change(c.record_type.value, version=2, op="delete", **kwargs))  # type: ignore[arg-type]
        else:
            data = dict(c.data or {})
            data["encounter_type"] = "inpatient" if "encounter_type" in data else None
            data = {k: v for k, v in data.items() if v is not None}
            changes.append(f.change(c.record_type.value, version=2, data=data, **kwargs))  # type: ignore[arg-type]
    return raw([encode(c) for c in changes])


class Worker:
    """One life of a worker: the table restored from the changelog (as faust does for its
    RocksDB store), the input resumed from the committed offsets."""

    def __init__(self, cluster: Cluster, fail_step: int | None = None) -> None:
        self.cluster = cluster
        producer = cluster.producer
        for key, value, partition in producer.topics[CHANGELOG]:  # faust's restore
            assert key is not None and value is not None and partition is not None
            cluster.disk[partition].put(key, value)
        state = DiskState(cluster.disk.__getitem__)
        self.processor = BatchProcessor(
            Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode())),
            Pseudonymiser("k"),
            topic_prefix="t.",
            aggregate_partitions=3,
            state=state,
        )
        self.fail_step = fail_step
        self.failing = False  # the batch being checkpointed is the one to fail

        def write_state(changes: StateChanges) -> None:
            if self.failing and fail_step == 3:
                raise Crash("disk")
            state.commit(changes)

        async def ack(events: Sequence[RawMessage]) -> None:
            if self.failing and fail_step == 4:
                raise Crash("ack")
            for m in events:  # faust commits the acked offsets
                cluster.committed[m.partition] = max(
                    cluster.committed.get(m.partition, 0), m.offset + 1
                )

        self.checkpoint = Checkpoint(
            producer,
            changelog=CHANGELOG,
            write_state=write_state,
            ack=ack,
            deltas_topic=DELTAS,
            dead_letters=self.processor.refused,
        )

    def run(
        self, msgs: Sequence[RawMessage], batch: int, fail_batch: int = -1, overlap: bool = False
    ) -> list[BatchOutput]:
        """Process what was not committed, ``batch`` events at a time; the checkpoint of
        batch ``fail_batch`` fails at this worker's ``fail_step`` (the worker then stops).
        ``overlap``: as ``ValidateAgent`` with it, batch k+1 is processed before batch k's
        checkpoint runs (begun, then settled before k+1's begins)."""
        todo = [m for m in msgs if m.offset >= self.cluster.committed.get(m.partition, 0)]
        outs: list[BatchOutput] = []
        producer, checkpoint = self.cluster.producer, self.checkpoint

        async def life() -> None:
            for k, start in enumerate(range(0, len(todo), batch)):
                part = todo[start : start + batch]
                out = self.processor.process(part)
                outs.append(out)
                if overlap:
                    await checkpoint.settle()  # batch k-1's four steps (or its failure)
                self.failing = k == fail_batch
                flushes = {1: producer.flushes, 2: producer.flushes + 1}  # of steps 1 and 2
                producer.fail_flush = flushes.get(self.fail_step or 0) if self.failing else None
                if overlap:
                    checkpoint.begin(out, part)
                else:
                    await checkpoint.commit(out, part)
            await checkpoint.settle()

        asyncio.run(life())
        return outs


def _ids(cluster: Cluster, base: str) -> Counter[str]:
    """Event ids on one tier (the national tier's are its own keyed hashes, equal in two runs
    with the same key: compared as they are)."""
    return Counter(
        orjson.loads(value or b"")["event_id"]
        for _k, value, _p in cluster.producer.topics[f"t.{base}"]
    )


def _counters(cluster: Cluster) -> dict[str, int]:
    """The counting side over every delta message, in order, each delivered twice."""
    import orjson

    live = LiveCounters()
    for _key, value, q in cluster.producer.topics[DELTAS]:
        assert q is not None
        live.apply(q, orjson.loads(value or b""))
        live.apply(q, orjson.loads(value or b""))
    return {k: v for k, v in live.values().items() if v}


def _valid_records(cluster: Cluster) -> list[Any]:
    """The accepted records, from their record-level copies (a topic per province)."""
    return [
        load_tier_record(v or b"")
        for topic, sent in cluster.producer.topics.items()
        if topic.startswith("t.tier.province.")
        for _k, v, _p in sent
    ]


@pytest.mark.parametrize("overlap", [False, True], ids=["sequential", "overlapped"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failed_checkpoint_is_processed_again_after_restart(step: int, overlap: bool) -> None:
    """Overlapped, batch 3 is processed while batch 2's checkpoint fails: batch 3 is never
    published, written to disk nor acked, and the restart still loses and doubles nothing."""
    msgs = _changes()
    reference = Cluster()
    Worker(reference).run(msgs, batch=8)
    expected = _counters(reference)
    assert expected == recompute(_valid_records(reference)) and expected

    cluster = Cluster()
    first = Worker(cluster, fail_step=step)
    with pytest.raises((OutputError, Crash)):
        first.run(msgs, batch=8, fail_batch=2, overlap=overlap)
    failed = msgs[16:24]
    assert all(m.offset >= cluster.committed.get(m.partition, 0) for m in failed)  # not acked
    after = msgs[24:32]  # processed (overlapped) or never taken: nothing of it anywhere
    assert all(m.offset >= cluster.committed.get(m.partition, 0) for m in after)
    ids_after = {(dict(m.headers)["ce_id"] or b"").decode() for m in after}
    province = [t for t in cluster.producer.topics if t.startswith("t.tier.province.")]
    assert not ids_after & {i for t in province for i in _ids(cluster, t.removeprefix("t."))}
    assert ids_after & {i for t in province for i in _ids(reference, t.removeprefix("t."))}
    logged = {(key, value) for key, value, _p in cluster.producer.topics[CHANGELOG]}
    on_disk = {item for db in cluster.disk.values() for item in db.items()}
    assert on_disk <= logged  # the disk never ahead of the changelog
    if step == 1:  # the changelog never saw the batch (at step 2 it may hold part of it)
        assert on_disk == logged
    again = Worker(cluster).run(msgs, batch=8, overlap=overlap)  # the restart
    if step >= 3:  # the changelog had the batch: its events come back as duplicates
        assert again[0].duplicates == len(failed) and not again[0].outputs
    tiers = [t.removeprefix("t.") for t in reference.producer.topics if t.startswith("t.tier.")]
    assert "tier.national" in tiers and len(tiers) > 1
    for base in tiers:  # no loss: every event on every tier
        assert set(_ids(cluster, base)) == set(_ids(reference, base)), base
    assert _counters(cluster) == expected  # no double count
    assert dict(cluster.disk) == dict(reference.disk)
    assert cluster.committed == reference.committed
