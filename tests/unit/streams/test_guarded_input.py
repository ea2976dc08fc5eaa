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
    """A consumer: the committed offsets it caches, those on the broker (``None``: the group
    never committed), the assignment, the end offsets; every call that asks the broker or
    moves the consumer is logged."""

    cached: dict[str, dict[int, int | None]] = field(default_factory=dict)
    on_broker: dict[tuple[str, int], int | None] = field(default_factory=dict)
    assignment: list[tuple[str, int]] = field(default_factory=list)
    end: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def committed(self, topic: str) -> Mapping[int, int | None]:
        return self.cached.get(topic, {})

    async def broker_committed(
        self, topic: str, partition: int, *, never: int | None = 0
    ) -> int | None:
        self.calls.append(("broker_committed", topic, partition))
        offset = self.on_broker.get((topic, partition))
        return never if offset is None else offset

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


def test_events_that_follow_on_pass_without_asking_the_broker() -> None:
    consumer = FakeConsumer(cached={RAW: {0: 10, 1: 3}})
    guarded = _input(consumer, Clock())
    assert _admit(guarded, [(0, 10), (1, 3), (0, 11)]) == [(0, 10), (1, 3), (0, 11)]
    assert _admit(guarded, [(0, 12), (1, 4)]) == [(0, 12), (1, 4)]
    assert consumer.calls == []


def test_a_jump_is_held_back_and_sought_back_once() -> None:
    consumer = FakeConsumer(cached={RAW: {0: 10, 1: 3}})
    clock = Clock()
    guarded = _input(consumer, clock)
    got = _admit(guarded, [(0, 10), (0, 11), (0, 15), (0, 16), (1, 3)])
    assert got == [(0, 10), (0, 11), (1, 3)]
    assert consumer.calls == [("seek", RAW, 0, 12)]
    clock.now = 1.0  # stale events still queued: no second seek within retry_seek_s
    assert _admit(guarded, [(0, 17)]) == []
    assert consumer.calls == [("seek", RAW, 0, 12)]
    assert _admit(guarded, [(0, 12), (0, 13)]) == [(0, 12), (0, 13)]  # the re-fetch
    clock.now = 30.0  # a wait longer than retry_seek_s: sought again
    assert _admit(guarded, [(0, 20)]) == []
    assert consumer.calls[-1] == ("seek", RAW, 0, 14)


def test_without_a_cached_baseline_the_broker_is_asked_before_the_batch_is_checked() -> None:
    """The kill-test loss: after a restart faust's cache was empty and a stale fetch from
    beyond the committed offset was taken as the baseline."""
    consumer = FakeConsumer(on_broker={(RAW, 0): 50, (RAW, 1): None})
    guarded = _input(consumer, Clock())
    got = _admit(guarded, [(0, 100), (0, 101), (1, 7), (1, 8)])
    assert got == [(1, 7), (1, 8)]  # partition 1 never committed: taken as it comes
    assert consumer.calls == [
        ("broker_committed", RAW, 0),
        ("broker_committed", RAW, 1),
        ("seek", RAW, 0, 50),
    ]


def test_an_assignment_takes_the_committed_offsets_as_the_new_baseline() -> None:
    consumer = FakeConsumer(cached={RAW: {0: 0}})
    clock = Clock()
    guarded = _input(consumer, clock)
    assert _admit(guarded, [(0, 0), (0, 1), (0, 2)]) == [(0, 0), (0, 1), (0, 2)]
    assert guarded.last_seen == {0: 0.0}
    consumer.cached[RAW] = {0: 1}  # another worker committed only up to 1 before handing back
    guarded.on_assignment()
    assert guarded.last_seen == {}
    assert _admit(guarded, [(0, 1), (0, 2)]) == [(0, 1), (0, 2)]
    assert consumer.calls == []


# --- the partition watchdog ---


def _watchdog(
    consumer: FakeConsumer, clock: Clock
) -> tuple[PartitionWatchdog, GuardedInput[Event]]:
    guarded = _input(consumer, clock)
    watchdog = PartitionWatchdog(consumer, {RAW: guarded}, stall_after_s=20.0, clock=clock)
    return watchdog, guarded


def _tick(watchdog: PartitionWatchdog) -> list[tuple[str, int, int]]:
    return asyncio.run(watchdog.tick())


def test_a_silent_partition_with_lag_is_resumed_at_its_position() -> None:
    consumer = FakeConsumer(
        cached={RAW: {0: 9, 1: 0}},
        assignment=[(RAW, 0), (RAW, 1), ("other", 0)],
        end={(RAW, 0): 50, (RAW, 1): 40, ("other", 0): 99},
    )
    clock = Clock()
    watchdog, guarded = _watchdog(consumer, clock)
    _admit(guarded, [(0, 9)])  # partition 0 delivered at t=0, then nothing
    clock.now = 10.0
    assert _tick(watchdog) == []  # a fresh assignment gets stall_after_s to recover
    assert consumer.calls == []
    clock.now = 24.0
    _admit(guarded, [(1, 0)])  # partition 1 delivers
    clock.now = 25.0
    assert _tick(watchdog) == [(RAW, 0, 10)]
    assert consumer.calls == [
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


def test_a_partition_with_no_position_takes_the_broker_committed_offset_after_silence() -> None:
    consumer = FakeConsumer(
        assignment=[(RAW, 0), (RAW, 1)], end={(RAW, 0): 5, (RAW, 1): 5}, on_broker={(RAW, 1): 3}
    )
    clock = Clock()
    watchdog, _guarded = _watchdog(consumer, clock)
    clock.now = 21.0
    assert _tick(watchdog) == []  # first look: silence starts now, the broker not asked yet
    assert [c[0] for c in consumer.calls] == ["ends"]
    clock.now = 42.0
    assert _tick(watchdog) == [(RAW, 0, 0), (RAW, 1, 3)]  # never committed: from 0
    assert ("broker_committed", RAW, 0) in consumer.calls


def test_an_assignment_restarts_the_grace_period_and_clears_what_was_seen() -> None:
    consumer = FakeConsumer(cached={RAW: {0: 0}}, assignment=[(RAW, 0)], end={(RAW, 0): 9})
    clock = Clock()
    watchdog, guarded = _watchdog(consumer, clock)
    _admit(guarded, [(0, 0)])
    clock.now = 30.0
    watchdog.on_assignment()
    assert guarded.last_seen == {}
    clock.now = 45.0
    assert _tick(watchdog) == []
    assert consumer.calls == []
