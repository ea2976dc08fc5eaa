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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

__all__ = ["OffsetGuard"]

E = TypeVar("E")


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

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.expected.pop(p, None)
            self.pending.pop(p, None)
