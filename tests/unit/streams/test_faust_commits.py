"""What the worker commits, with faust's own ack and commit arithmetic.

The fake is faust's consumer bookkeeping only (acked offsets, gaps, the cached committed
offsets) with faust-streaming's real methods (``Consumer.ack``, ``_add_gap``,
``_new_offset``, ``_filter_committable_offsets``); the shell is wired as ``streams.app`` wires
it: a :class:`GuardedInput` whose ack step is ``acking`` over faust's ack, and
``faustio.commit_processed_only``. Events are faust-like messages of one partition.

The kill test's loss (tests/faults/test_worker_kill.py: 672 valid events on no tier, the group
at lag 0): after a restart a stale fetch from beyond the committed offset was held back by the
guard and acked (faust waits for every delivered event to be acked), and faust committed past
the skipped run because its ``_new_offset`` refuses an acked run that does not start at the
committed offset only when its cached committed offset is truthy and more than one below it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st
from intervaltree import IntervalTree  # type: ignore[import-untyped]

from streams import faustio
from streams.offsets import GuardedInput
from tests.unit.streams.test_guarded_input import RAW, Clock, FakeConsumer


@dataclass(eq=False)
class Message:
    """What faust's ``Consumer.ack`` reads of a message."""

    topic: str
    partition: int
    offset: int
    acked: bool = False

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


class FaustBookkeeping:
    """faust's consumer state for acks and commits, run by faust's own methods."""

    ack: Any = Consumer.ack
    _add_gap: Any = Consumer._add_gap
    _new_offset: Any = Consumer._new_offset
    _should_commit: Any = Consumer._should_commit
    _filter_committable_offsets: Any = Consumer._filter_committable_offsets

    def __init__(self, cached_committed: Mapping[TP, int | None]) -> None:
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset.update(cached_committed)
        self._unacked_messages: set[Message] = set()
        self._n_acked = 0
        self._waiting_for_ack = None
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))

    def commit(self) -> int | None:
        """The offset faust's next commit sends for the partition (and caches), if any."""
        tp = TP(RAW, 0)
        offset: int | None = self._filter_committable_offsets([tp]).get(tp)
        if offset is not None:
            self._committed_offset[tp] = offset
        return offset


class Worker:
    """The shell over faust's bookkeeping, one partition (0) of the raw topic."""

    def __init__(self, broker_committed: int, cached_committed: int | None) -> None:
        self.faust = FaustBookkeeping({TP(RAW, 0): cached_committed})
        self.port = FakeConsumer(on_broker={(RAW, 0): broker_committed})
        self.source: GuardedInput[Message] = GuardedInput(
            RAW, self.port, lambda m: (m.partition, m.offset), clock=Clock()
        )
        faustio.commit_processed_only(
            SimpleNamespace(consumer=self.faust),  # type: ignore[arg-type]
            {RAW: self.source.committable},
        )
        self.ack = self.source.acking(self._faust_ack)
        self.processed: set[int] = set()

    async def _faust_ack(self, events: Sequence[Message]) -> None:
        for event in events:
            self.faust.ack(event)

    def deliver(self, *offsets: int) -> list[int]:
        """One batch through the shell (admit, process, ack); the offsets processed."""
        batch = [Message(RAW, 0, o) for o in offsets]

        async def run() -> list[Message]:
            events = await self.source.admit(batch)
            await self.ack(batch)  # every delivered event, those held back included
            return events

        done = [m.offset for m in asyncio.run(run())]
        self.processed.update(done)
        return done

    def seeks(self) -> list[int]:
        return [c[3] for c in self.port.calls if c[0] == "seek"]


def test_a_stale_fetch_after_a_restart_with_no_cached_commit_is_not_committed() -> None:
    """The kill test: faust's cache empty (or 0, which faust stores as None) after the restart,
    the broker at 39, a stale fetch from 54: held back, sought back to 39, nothing committed
    until 39.. are processed (faust alone commits 61: 39..53 lost)."""
    worker = Worker(broker_committed=39, cached_committed=None)
    assert worker.deliver(*range(54, 61)) == []
    assert worker.seeks() == [39]
    assert worker.faust.commit() is None
    assert worker.deliver(*range(39, 54)) == list(range(39, 54))  # the re-fetch
    assert worker.faust.commit() == 54
    assert worker.deliver(*range(54, 61)) == list(range(54, 61))
    assert worker.faust.commit() == 61


def test_a_run_one_past_the_cached_commit_is_not_committed() -> None:
    """faust's ``min(acked) - committed > 1`` lets a run that starts one past the committed
    offset through: 39 would be skipped."""
    worker = Worker(broker_committed=39, cached_committed=39)
    assert worker.deliver(*range(40, 50)) == []
    assert worker.faust.commit() is None
    assert worker.deliver(39, 40) == [39, 40]
    assert worker.faust.commit() == 41


def test_a_cache_ahead_of_the_broker_is_not_the_baseline() -> None:
    """faust caches the offsets of a commit that failed in a rebalance: the guard's baseline
    is the broker's committed offset (seen: a seek-back to 54 while 39.. were missing)."""
    worker = Worker(broker_committed=39, cached_committed=54)
    assert worker.deliver(54, 55) == []
    assert worker.seeks() == [39]


@settings(max_examples=200, deadline=None)
@given(
    committed=st.integers(0, 5),
    cached=st.one_of(st.none(), st.integers(0, 12)),
    batches=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=8), max_size=12),
)
def test_nothing_is_committed_past_an_event_not_processed(
    committed: int, cached: int | None, batches: list[list[int]]
) -> None:
    """Whatever faust delivers (stale fetches, jumps, repeats, any order) and whatever it
    caches, every offset below a commit was processed or was below the broker's committed
    offset."""
    worker = Worker(broker_committed=committed, cached_committed=cached)
    for offsets in batches:
        worker.deliver(*offsets)
        offset = worker.faust.commit()
        if offset is not None:
            assert set(range(committed, offset)) <= worker.processed
