"""Resume an input partition that has lag but delivers nothing. No faust here.

faust can leave an assigned partition paused after a rebalance (seen in the kill tests: the
partition's lag grows, no batch ever comes). Every ``stall_check_s`` the worker's timer calls
:meth:`PartitionWatchdog.tick`: an assigned partition of a guarded input whose end offset is
beyond its position (the next offset the input expects, else the committed one) and that
delivered nothing for ``stall_after_s`` is resumed and sought to that position. A fresh
assignment gets ``stall_after_s`` to recover by itself first. A partition with no known
position at all takes where the group resumes it from the broker (its committed offset, else
the partition's first offset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from streams.offsets import ConsumerPort, GuardedInput

__all__ = ["PartitionWatchdog"]

logger = logging.getLogger(__name__)


class PartitionWatchdog:
    """Watches the assigned partitions of ``inputs`` (topic → its :class:`GuardedInput`)."""

    def __init__(
        self,
        consumer: ConsumerPort,
        inputs: Mapping[str, GuardedInput[Any]],
        *,
        stall_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.inputs = dict(inputs)
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.assigned_at = clock()

    def on_assignment(self) -> None:
        """Partitions were (re)assigned: every input starts over, the grace period too."""
        for guarded in self.inputs.values():
            guarded.on_assignment()
        self.assigned_at = self.clock()

    async def tick(self) -> list[tuple[str, int, int]]:
        """Resume the stalled partitions; returns them as ``(topic, partition, offset)``."""
        now = self.clock()
        if now - self.assigned_at < self.stall_after_s:
            return []  # let a fresh assignment recover first
        tps = [(t, p) for t, p in self.consumer.assigned() if t in self.inputs]
        if not tps:
            return []
        ends = await self.consumer.ends(tps)
        resumed = []
        for topic, partition in tps:
            offset = await self._stalled(topic, partition, ends.get((topic, partition)), now)
            if offset is None:
                continue
            logger.warning(
                "partition stalled topic=%s partition=%d position=%d end=%d: resuming",
                topic,
                partition,
                offset,
                ends[(topic, partition)],
            )
            self.consumer.resume(topic, partition)
            await self.consumer.seek(topic, partition, offset)
            self.inputs[topic].resumed(partition, offset, now)
            resumed.append((topic, partition, offset))
        return resumed

    async def _stalled(self, topic: str, partition: int, end: int | None, now: float) -> int | None:
        """The position to resume ``partition`` at, or ``None`` when it is not stalled."""
        guarded = self.inputs[topic]
        silent_s = now - guarded.last_seen.setdefault(partition, now)
        position = guarded.position(partition)
        if position is None and silent_s >= self.stall_after_s:
            position = await self.consumer.start_offset(topic, partition)
            logger.info(
                "watchdog topic=%s partition=%d no position seen, broker start=%s",
                topic,
                partition,
                position,
            )
        if position is None or end is None or end <= position or silent_s < self.stall_after_s:
            return None
        return position
