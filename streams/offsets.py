"""Guard against faust skipping offsets, and commit only what was processed. Pure.

faust-streaming 0.15.3 can deliver a partition's events with a run of offsets missing (a
stale fetch after a rebalance or a restart, or records of an older fetch still queued when the
shell seeks back) and, by itself, commits offsets past events it never processed: it records
a jump as a "gap" (meant for compacted topics) and acks it, and its commit arithmetic
(``Consumer._new_offset``) only refuses a run of acked offsets that does not start at the
committed one when the cached committed offset is truthy and more than one below (an empty
cache after a restart, an offset 0 or a gap of exactly one offset pass). The shell therefore:

1. checks every batch with :class:`OffsetGuard`: a partition's offsets must follow on from
   its baseline, the group's committed offset **asked from the broker** at the partition's
   first batch after every assignment (faust's cached committed offsets can be empty, 0, or
   ahead of the broker after a commit that failed in a rebalance: never trusted for this);
   on a jump the rest of that partition's batch is held back and the partition is sought
   back to the first missing offset; events below the next expected offset were processed
   already and are skipped;
2. commits, for its input topics, exactly the offset after the last event the guard let
   through *and* the checkpoint finished (:meth:`GuardedInput.committable`, wired into
   faust by ``streams.faustio.commit_processed_only``), never anything derived from faust's
   acked offsets: the events held back are acked too (faust waits for every event it
   delivered to be acked before a rebalance or a stop completes) but move no commit.

So an event is committed only when it and every event before it on its partition since the
committed offset were processed, whatever faust delivers. A skipped run that faust never
re-delivers (its re-fetch dropped as "already read") keeps the partition's lag, and the
:class:`streams.watchdog.PartitionWatchdog` seeks it back to :meth:`GuardedInput.position`.

:class:`GuardedInput` is that for one input topic as the shell runs it, over a
:class:`ConsumerPort` (``streams.faustio``'s consumer in the worker, a fake in
``tests/unit/streams/test_guarded_input.py``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["ConsumerPort", "GuardedInput", "OffsetGuard"]

logger = logging.getLogger(__name__)

E = TypeVar("E")


class ConsumerPort(Protocol):
    """What the guarded inputs and the partition watchdog need of the consumer."""

    def committed(self, topic: str) -> Mapping[int, int | None]:
        """The committed offsets the consumer caches (may lack some after an assignment)."""
        ...

    async def start_offset(self, topic: str, partition: int) -> int | None:
        """Where the group resumes ``partition``, asked from the broker: its committed
        offset, else (never committed) the partition's first offset; ``None`` when the
        broker cannot say."""
        ...

    async def seek(self, topic: str, partition: int, offset: int) -> None: ...

    def assigned(self) -> list[tuple[str, int]]: ...

    async def ends(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offsets (high watermarks); a partition the broker cannot answer for is left
        out."""
        ...

    def resume(self, topic: str, partition: int) -> None: ...


class OffsetGuard:
    """Per-partition "next expected offset" of one input topic."""

    def __init__(self, retry_seek_s: float = 10.0) -> None:
        self.expected: dict[int, int] = {}
        self.pending: dict[int, tuple[int, float]] = {}  # partition -> (seek offset, when)
        self.retry_seek_s = retry_seek_s

    def on_assignment(self) -> None:
        """Partitions were (re)assigned: every partition needs a new baseline."""
        self.expected.clear()
        self.pending.clear()

    def without_baseline(self, partitions: Iterable[int]) -> list[int]:
        """Of ``partitions``, those with no expected offset yet (since the assignment): the
        shell asks the broker where they start before :meth:`check`."""
        return sorted(set(partitions) - self.expected.keys())

    def check(
        self,
        events: Sequence[E],
        coordinates: Callable[[E], tuple[int, int]],
        baseline: Mapping[int, int] | None = None,
        now: float = 0.0,
    ) -> tuple[list[E], dict[int, int]]:
        """Split ``events`` into those to process now and ``{partition: seek offset}`` for
        partitions with a jump (their later events are held back, to be re-fetched).

        A partition without an expected offset takes it from ``baseline``; one with neither
        has all its events held back and is sought back to its first one (to be checked
        again once its baseline is known). Events below the expected offset were processed
        already (a re-delivery) and are dropped. A partition already waiting for its
        re-fetch is not sought again (stale events still queued inside faust would
        otherwise restart the fetch forever) unless the wait is older than ``retry_seek_s``.
        """
        for partition, offset in (baseline or {}).items():
            self.expected.setdefault(partition, offset)
        keep: list[E] = []
        seeks: dict[int, int] = {}
        for event in events:
            partition, offset = coordinates(event)
            want = self.expected.get(partition)
            if want is None:  # no baseline: hold back, come again from the first one
                seeks.setdefault(partition, offset)
                continue
            if offset < want:
                continue
            if offset > want:
                since = self.pending.get(partition)
                if since is None or now - since[1] >= self.retry_seek_s:
                    self.pending[partition] = (want, now)
                    seeks[partition] = want
                continue
            self.pending.pop(partition, None)
            keep.append(event)
            self.expected[partition] = offset + 1
        return keep, seeks


class GuardedInput(Generic[E]):
    """One input topic's batches through an :class:`OffsetGuard`: :meth:`admit` returns the
    events to process now; a partition that jumped is sought back to its first missing offset
    (its later events are held back, to be re-fetched). :meth:`acking` wraps the checkpoint's
    ack step so :meth:`committable` advances only over processed events. Also remembers when
    each partition last delivered something (for :class:`streams.watchdog.PartitionWatchdog`)."""

    def __init__(
        self,
        topic: str,
        consumer: ConsumerPort,
        coordinates: Callable[[E], tuple[int, int]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.consumer = consumer
        self.coordinates = coordinates
        self.clock = clock
        self.guard = OffsetGuard()
        #: partition → when it last delivered a batch (or was resumed)
        self.last_seen: dict[int, float] = {}
        #: partition → the offset after the last event processed and checkpointed
        self.processed: dict[int, int] = {}
        self._generation = 0
        #: per batch admitted and not yet acked, oldest first (batches are acked in the order
        #: they were admitted, also when the next is admitted before the last is acked):
        #: (generation, {partition: offset after its last admitted event})
        self._admitted: deque[tuple[int, dict[int, int]]] = deque()

    def on_assignment(self) -> None:
        """Partitions were (re)assigned: new baselines, nothing seen or processed yet (a batch
        admitted before moves no commit)."""
        self.guard.on_assignment()
        self.last_seen.clear()
        self.processed.clear()
        self._generation += 1

    async def admit(self, batch: Sequence[E]) -> list[E]:
        """The events of ``batch`` to process now. A partition's first batch after an
        assignment gets its baseline from the broker (:meth:`ConsumerPort.start_offset`)."""
        now = self.clock()
        partitions = {self.coordinates(e)[0] for e in batch}
        for p in partitions:
            self.last_seen[p] = now
        missing = self.guard.without_baseline(partitions)
        baseline = await self._baseline(missing) if missing else {}
        events, seeks = self.guard.check(batch, self.coordinates, baseline, now)
        for partition, offset in seeks.items():
            logger.warning(
                "offset jump topic=%s partition=%d: seeking back to offset=%d",
                self.topic,
                partition,
                offset,
            )
            await self.consumer.seek(self.topic, partition, offset)
        admitted = {p: self.guard.expected[p] for p in {self.coordinates(e)[0] for e in events}}
        self._admitted.append((self._generation, admitted))
        return events

    def acking(
        self, ack: Callable[[Sequence[E]], Awaitable[None]]
    ) -> Callable[[Sequence[E]], Awaitable[None]]:
        """``ack`` (the checkpoint's last step) that first marks the events :meth:`admit` let
        through of the oldest batch not acked yet as processed (unless an assignment came in
        between)."""

        async def processed_then_ack(events: Sequence[E]) -> None:
            if self._admitted:
                generation, admitted = self._admitted.popleft()
                if generation == self._generation:
                    self.processed.update(admitted)
            await ack(events)

        return processed_then_ack

    def committable(self, partition: int) -> int | None:
        """The offset the group may commit for ``partition``: the one after the last event
        processed in sequence from the baseline (``None``: nothing since the assignment)."""
        return self.processed.get(partition)

    async def _baseline(self, partitions: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for p in partitions:
            offset = await self.consumer.start_offset(self.topic, p)
            if offset is not None:
                found[p] = offset
        logger.info("offset baseline from the broker topic=%s start=%s", self.topic, found)
        return found

    def position(self, partition: int) -> int | None:
        """The next offset this input expects of ``partition`` (else the consumer's cached
        committed offset; ``None`` when neither is known)."""
        expected = self.guard.expected.get(partition)
        if expected is not None:
            return expected
        return self.consumer.committed(self.topic).get(partition)

    def resumed(self, partition: int, offset: int, now: float) -> None:
        """``partition`` was sought to ``offset`` and resumed (by the watchdog): wait for its
        re-fetch as after a seek-back."""
        self.last_seen[partition] = now
        self.guard.pending[partition] = (offset, now)
