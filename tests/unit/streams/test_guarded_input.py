"""The guarded input (offset guard, broker baseline, seek-back) and the partition watchdog,
driven with a fake consumer and a fake clock (events are ``(partition, offset)`` pairs)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.offsets import GuardedInput
from streams.watchdog import PartitionWatchdog

Event = tuple[int, int]
RAW = "t.station.changes"


def _coordinates(event: Event) -> tuple[int, int]:
    return event


@dataclass
class FakeConsumer:
    """A consumer: the committed offsets it caches, those on the broker (absent: the group
    never committed, it starts at ``first``; ``None``: the broker cannot say), the assignment,
    the end offsets; every call that asks the broker or moves the consumer is logged."""

    cached: dict[str, dict[int, int | None]] = field(default_factory=dict)
    on_broker: dict[tuple[str, int], int | None] = field(default_factory=dict)
    first: int = 0
    assignment: list[tuple[str, int]] = field(default_factory=list)
    end: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def committed(self, topic: str) -> Mapping[int, int | None]:
        return self.cached.get(topic, {})

    async def start_offset(self, topic: str, partition: int) -> int | None:
        self.calls.append(("start_offset", topic, partition))
        return self.on_broker.get((topic, partition), self.first)

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        self.calls.append(("seek", topic, partition, offset))

    def assigned(self) -> list[tuple[str, int]]:
        return list(self.assignment)

    async def ends(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self.calls.append(("ends", list(partitions)))
        return {tp: self.end[tp] for tp in partitions if tp in self.end}

    def resume(self, topic: str, partition: int) -> None:
        self.calls.append(("resume", topic, partition))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _input(consumer: FakeConsumer, clock: Clock, topic: str = RAW) -> GuardedInput[Event]:
    return GuardedInput(topic, consumer, _coordinates, clock=clock)


def _admit(guarded: GuardedInput[Event], batch: list[Event]) -> list[Event]:
    return asyncio.run(guarded.admit(batch))


def test_events_that_follow_on_pass_and_the_broker_is_asked_once_per_assignment() -> None:
    consumer = FakeConsumer(on_broker={(RAW, 0): 10, (RAW, 1): 3})
    guarded = _input(consumer, Clock())
    assert _admit(guarded, [(0, 10), (1, 3), (0, 11)]) == [(0, 10), (1, 3), (0, 11)]
    assert _admit(guarded, [(0, 12), (1, 4)]) == [(0, 12), (1, 4)]
    assert consumer.calls == [("start_offset", RAW, 0), ("start_offset", RAW, 1)]


def test_a_jump_is_held_back_and_sought_back_once() -> None:
    consumer = FakeConsumer(on_broker={(RAW, 0): 10, (RAW, 1): 3})
    clock = Clock()
    guarded = _input(consumer, clock)
    got = _admit(guarded, [(0, 10), (0, 11), (0, 15), (0, 16), (1, 3)])
    assert got == [(0, 10), (0, 11), (1, 3)]
    assert consumer.calls[-1] == ("seek", RAW, 0, 12)
    clock.now = 1.0  # stale events still queued: no second seek within retry_seek_s
    assert _admit(guarded, [(0, 17)]) == []
    assert consumer.calls[-1] == ("seek", RAW, 0, 12)
    assert _admit(guarded, [(0, 12), (0, 13)]) == [(0, 12), (0, 13)]  # the re-fetch
    clock.now = 30.0  # a wait longer than retry_seek_s: sought again
    assert _admit(guarded, [(0, 20)]) == []
    assert consumer.calls[-1] == ("seek", RAW, 0, 14)


def test_the_baseline_is_the_brokers_never_the_consumers_cache() -> None:
    """The kill-test losses: after a restart faust's cache was empty, 0, or ahead of the
    broker (it caches a commit that failed in a rebalance), and a stale fetch from beyond
    the committed offset was taken as following on."""
    consumer = FakeConsumer(cached={RAW: {0: 100, 1: None}}, on_broker={(RAW, 0): 50}, first=7)
    guarded = _input(consumer, Clock())
    got = _admit(guarded, [(0, 100), (0, 101), (1, 7), (1, 8)])
    assert got == [(1, 7), (1, 8)]  # partition 1 never committed: from its first offset
    assert consumer.calls == [
        ("start_offset", RAW, 0),
        ("start_offset", RAW, 1),
        ("seek", RAW, 0, 50),
    ]


def test_a_partition_the_broker_cannot_place_is_held_back_until_it_can() -> None:
    consumer = FakeConsumer(on_broker={(RAW, 0): None})
    guarded = _input(consumer, Clock())
    assert _admit(guarded, [(0, 5), (0, 6)]) == []
    assert consumer.calls[-1] == ("seek", RAW, 0, 5)
    consumer.on_broker[(RAW, 0)] = 5
    assert _admit(guarded, [(0, 5), (0, 6)]) == [(0, 5), (0, 6)]


def test_an_assignment_takes_the_committed_offsets_as_the_new_baseline() -> None:
    consumer = FakeConsumer()
    clock = Clock()
    guarded = _input(consumer, clock)
    assert _admit(guarded, [(0, 0), (0, 1), (0, 2)]) == [(0, 0), (0, 1), (0, 2)]
    assert guarded.last_seen == {0: 0.0}
    consumer.on_broker[(RAW, 0)] = 1  # another worker committed only up to 1 before
    guarded.on_assignment()
    assert guarded.last_seen == {}
    assert _admit(guarded, [(0, 1), (0, 2)]) == [(0, 1), (0, 2)]
    assert consumer.calls == [("start_offset", RAW, 0)] * 2


def test_only_processed_events_become_committable() -> None:
    """The commit position moves at the checkpoint's ack, over the events let through only;
    a batch admitted before an assignment moves nothing."""
    consumer = FakeConsumer(on_broker={(RAW, 0): 10})
    guarded = _input(consumer, Clock())
    acked: list[Event] = []

    async def ack(events: Sequence[Event]) -> None:
        acked.extend(events)

    acking = guarded.acking(ack)

    async def ack_all(events: Sequence[Event]) -> None:
        await acking(events)

    batch = [(0, 10), (0, 11), (0, 30)]
    assert _admit(guarded, batch) == [(0, 10), (0, 11)]
    assert guarded.committable(0) is None  # admitted, not processed yet
    asyncio.run(ack_all(batch))
    assert acked == batch and guarded.committable(0) == 12  # not 31
    assert _admit(guarded, [(0, 12)]) == [(0, 12)]
    guarded.on_assignment()
    asyncio.run(ack_all([(0, 12)]))
    assert guarded.committable(0) is None


# --- the partition watchdog ---


def _watchdog(
    consumer: FakeConsumer, clock: Clock
) -> tuple[PartitionWatchdog, GuardedInput[Event]]:
    guarded = _input(consumer, clock)
    watchdog = PartitionWatchdog(consumer, {RAW: guarded}, stall_after_s=20.0, clock=clock)
    return watchdog, guarded


def _tick(watchdog: PartitionWatchdog) -> list[tuple[str, int, int]]:
    return asyncio.run(watchdog.tick())


def _moves(consumer: FakeConsumer) -> list[tuple[Any, ...]]:
    """The calls but the guard's baseline questions."""
    return [c for c in consumer.calls if c[0] != "start_offset"]


def test_a_silent_partition_with_lag_is_resumed_at_its_position() -> None:
    consumer = FakeConsumer(
        on_broker={(RAW, 0): 9, (RAW, 1): 0},
        assignment=[(RAW, 0), (RAW, 1), ("other", 0)],
        end={(RAW, 0): 50, (RAW, 1): 40, ("other", 0): 99},
    )
    clock = Clock()
    watchdog, guarded = _watchdog(consumer, clock)
    _admit(guarded, [(0, 9)])  # partition 0 delivered at t=0, then nothing
    clock.now = 10.0
    assert _tick(watchdog) == []  # a fresh assignment gets stall_after_s to recover
    assert _moves(consumer) == []
    clock.now = 24.0
    _admit(guarded, [(1, 0)])  # partition 1 delivers
    clock.now = 25.0
    assert _tick(watchdog) == [(RAW, 0, 10)]
    assert _moves(consumer) == [
        ("ends", [(RAW, 0), (RAW, 1)]),  # only the guarded inputs' partitions
        ("resume", RAW, 0),
        ("seek", RAW, 0, 10),
    ]
    assert guarded.guard.pending[0] == (10, 25.0) and guarded.last_seen[0] == 25.0
    clock.now = 30.0
    assert _tick(watchdog) == []  # just resumed: given stall_after_s again
    clock.now = 46.0
    assert _tick(watchdog) == [(RAW, 0, 10), (RAW, 1, 1)]


def test_a_caught_up_partition_is_left_alone() -> None:
    consumer = FakeConsumer(cached={RAW: {0: 50}}, assignment=[(RAW, 0)], end={(RAW, 0): 50})
    clock = Clock()
    watchdog, _guarded = _watchdog(consumer, clock)
    clock.now = 100.0
    assert _tick(watchdog) == []
    assert [c[0] for c in consumer.calls] == ["ends"]


def test_a_partition_with_no_position_takes_the_broker_start_offset_after_silence() -> None:
    consumer = FakeConsumer(
        assignment=[(RAW, 0), (RAW, 1)], end={(RAW, 0): 5, (RAW, 1): 5}, on_broker={(RAW, 1): 3}
    )
    clock = Clock()
    watchdog, _guarded = _watchdog(consumer, clock)
    clock.now = 21.0
    assert _tick(watchdog) == []  # first look: silence starts now, the broker not asked yet
    assert [c[0] for c in consumer.calls] == ["ends"]
    clock.now = 42.0
    assert _tick(watchdog) == [(RAW, 0, 0), (RAW, 1, 3)]  # never committed: from its first
    assert ("start_offset", RAW, 0) in consumer.calls


def test_an_assignment_restarts_the_grace_period_and_clears_what_was_seen() -> None:
    consumer = FakeConsumer(assignment=[(RAW, 0)], end={(RAW, 0): 9})
    clock = Clock()
    watchdog, guarded = _watchdog(consumer, clock)
    _admit(guarded, [(0, 0)])
    clock.now = 30.0
    watchdog.on_assignment()
    assert guarded.last_seen == {}
    clock.now = 45.0
    assert _tick(watchdog) == []
    assert _moves(consumer) == []
