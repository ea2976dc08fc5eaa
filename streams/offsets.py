"""Guard against faust skipping offsets after a rebalance. Pure.

Observed with faust-streaming 0.15.3 (tests/integration/test_streams.py, two workers, one
killed): after an eager rebalance a worker that keeps a partition can receive a stale fetch
from beyond its committed offset; faust's consumer then records the jump as a "gap" (meant for
compacted topics), acks the skipped offsets and drops their re-fetch as already read, so a
run of events is never processed. The shell therefore (1) disables faust's gap-acking for its
input topics and (2) checks every batch with :class:`OffsetGuard`: offsets of a partition must
follow on from the last processed one (or, right after an assignment, from the committed
offset); on a jump the rest of that partition's batch is held back and the shell seeks the
partition back to the first missing offset, so the skipped run is fetched and processed.

The committed offsets faust caches can still be missing when the first batch after an
assignment arrives (seen after a worker was SIGKILLed and restarted: an empty cache, then a
stale fetch from beyond the committed offset that was processed and committed, losing the run
before it). For a partition with no baseline the shell therefore asks the broker for the
group's committed offset first (:meth:`OffsetGuard.without_baseline`); only a partition the
group never committed has none, and its first offset is taken as it comes.

:class:`GuardedInput` is that check for one input topic as the shell runs it (the broker
baseline, the guard, the seeks), over a :class:`ConsumerPort` (``streams.faustio``'s
consumer in the worker, a fake in ``tests/unit/streams/test_guarded_input.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["ConsumerPort", "GuardedInput", "OffsetGuard"]

logger = logging.getLogger(__name__)

E = TypeVar("E")


class ConsumerPort(Protocol):
    """What the guarded inputs and the partition watchdog need of the consumer."""

    def committed(self, topic: str) -> Mapping[int, int | None]:
        """The committed offsets the consumer caches (may lack some after an assignment)."""
        ...

    async def broker_committed(
        self, topic: str, partition: int, *, never: int | None = 0
    ) -> int | None:
        """The group's committed offset asked from the broker; ``never`` when the group never
        committed one, ``None`` when the broker cannot say."""
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
        self._rebaseline: bool = True

    def on_assignment(self) -> None:
        """Partitions were (re)assigned: take the committed offsets as the next baseline."""
        self._rebaseline = True

    def without_baseline(
        self, partitions: Iterable[int], committed: Mapping[int, int | None]
    ) -> list[int]:
        """Of ``partitions``, those :meth:`check` would have no expected offset for, given
        ``committed`` (the shell asks the broker for their committed offsets first)."""
        return sorted(
            p
            for p in set(partitions)
            if committed.get(p) is None and (self._rebaseline or p not in self.expected)
        )

    def check(
        self,
        events: Sequence[E],
        coordinates: Callable[[E], tuple[int, int]],
        committed: Mapping[int, int | None] | None = None,
        now: float = 0.0,
    ) -> tuple[list[E], dict[int, int]]:
        """Split ``events`` into those to process now and ``{partition: seek offset}`` for
        partitions with a jump (their later events are held back, to be re-fetched).

        A partition already waiting for its re-fetch is not sought again (stale events still
        queued inside faust would otherwise restart the fetch forever) unless the wait is
        older than ``retry_seek_s``.
        """
        if self._rebaseline:
            self._rebaseline = False
            self.expected = {p: o for p, o in (committed or {}).items() if o is not None}
            self.pending.clear()
        keep: list[E] = []
        seeks: dict[int, int] = {}
        for event in events:
            partition, offset = coordinates(event)
            want = self.expected.get(partition)
            if want is None and committed:  # the partition's first event since the assignment
                want = committed.get(partition)
            if want is not None and offset > want:
                since = self.pending.get(partition)
                if since is None or now - since[1] >= self.retry_seek_s:
                    self.pending[partition] = (want, now)
                    seeks[partition] = want
                continue
            if offset == want:
                self.pending.pop(partition, None)
            keep.append(event)
            self.expected[partition] = offset + 1
        return keep, seeks


class GuardedInput(Generic[E]):
    """One input topic's batches through an :class:`OffsetGuard`: :meth:`admit` returns the
    events to process now; a partition that jumped is sought back to its first missing offset
    (its later events are held back, to be re-fetched). Also remembers when each partition
    last delivered something (for :class:`streams.watchdog.PartitionWatchdog`)."""

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

    def on_assignment(self) -> None:
        """Partitions were (re)assigned: new baselines, nothing seen yet."""
        self.guard.on_assignment()
        self.last_seen.clear()

    async def admit(self, batch: Sequence[E]) -> list[E]:
        """The events of ``batch`` to process now. A partition without a baseline gets the
        group's committed offset from the broker first (faust's cache can still be empty
        after an assignment); a partition the group never committed takes its first offset
        as it comes."""
        now = self.clock()
        partitions = {self.coordinates(e)[0] for e in batch}
        for p in partitions:
            self.last_seen[p] = now
        committed = dict(self.consumer.committed(self.topic))
        missing = self.guard.without_baseline(partitions, committed)
        if missing:
            committed.update(await self._baseline(missing))
        events, seeks = self.guard.check(batch, self.coordinates, committed, now)
        for partition, offset in seeks.items():
            logger.warning(
                "offset jump topic=%s partition=%d: seeking back to offset=%d",
                self.topic,
                partition,
                offset,
            )
            await self.consumer.seek(self.topic, partition, offset)
        return events

    async def _baseline(self, partitions: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for p in partitions:
            offset = await self.consumer.broker_committed(self.topic, p, never=None)
            if offset is not None:
                found[p] = offset
        logger.info("offset baseline from the broker topic=%s committed=%s", self.topic, found)
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
