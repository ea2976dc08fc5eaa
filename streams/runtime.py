"""What the app's agents share: the validator, the batch processor, the live counters, the
check pool, the publisher and its thread, the stats. No faust here: the app
(:mod:`streams.app`) hands in the tables' stores (:mod:`streams.faustio`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from schemas import KeyRegistry
from schemas.hierarchy import Hierarchy
from schemas.topics import AGGREGATES
from streams.aggregate import LiveCounters
from streams.checkpoint import Checkpoint, StateChanges
from streams.checkpool import CheckPool, hierarchy_of, key_registry
from streams.config import StreamsConfig
from streams.output import BatchPublisher
from streams.pipeline import BatchOutput, BatchProcessor
from streams.pseudonymise import Pseudonymiser
from streams.state import StateStore
from streams.validate import Accepted, RawMessage, Rejected, Validator

__all__ = ["StreamsRuntime"]

logger = logging.getLogger(__name__)

E = TypeVar("E")


class StreamsRuntime:
    """One per app: builds the validator, the :class:`BatchProcessor` over ``state`` (the
    records table's store; default: memory), the :class:`LiveCounters` over ``counters`` (the
    counters table's dict), the check pool (``verify_processes``), and, on first use, the
    publisher."""

    def __init__(
        self,
        config: StreamsConfig,
        hierarchy: Hierarchy | None = None,
        keys: KeyRegistry | None = None,
        *,
        state: StateStore | None = None,
        counters: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.validator = Validator(
            hierarchy or hierarchy_of(config),
            keys if keys is not None else key_registry(config),
            config.policy,
            partitions=config.partitions,
        )
        self.pseudonymiser = Pseudonymiser(config.pseudonym_key_bytes())
        self.processor = BatchProcessor(
            self.validator,
            self.pseudonymiser,
            topic_prefix=config.topic_prefix,
            aggregate_partitions=config.aggregate_partitions,
            state=state,
            record_topics=config.record_topics,
            publish_valid=config.publish_valid,
        )
        self.counters = LiveCounters(counters)
        # stage 1 on threads of this process (0: inline on the event loop)
        self.pool: ThreadPoolExecutor | None = None
        if config.verify_threads > 0:
            self.pool = ThreadPoolExecutor(config.verify_threads, thread_name_prefix="validate")
        # stage 1 in worker processes (0: in this process, on ``pool``), spawned here, on the
        # thread building the app (see streams.checkpool)
        self.check_pool: CheckPool | None = None
        if config.verify_processes > 0:
            self.check_pool = CheckPool(
                config.verify_processes, config, hierarchy=hierarchy, keys=keys
            )
        self.io = ThreadPoolExecutor(1, thread_name_prefix="publish")
        self.publisher: BatchPublisher | None = None
        self.stats: Counter[str] = Counter()
        self.aggregates_topic = config.topic(AGGREGATES)

    def publisher_(self) -> BatchPublisher:
        """The publisher (built on first use: no connection before the worker runs)."""
        if self.publisher is None:
            self.publisher = BatchPublisher(
                self.config.kafka, client_id=f"{self.config.group_id}-out"
            )
        return self.publisher

    def checkpoint(
        self,
        changelog: str,
        write_state: Callable[[StateChanges], None],
        ack: Callable[[Sequence[E]], Awaitable[None]],
        *,
        records: bool,
    ) -> Checkpoint[E]:
        """The checkpoint of an agent's batches, publishing on the publisher's thread: the
        records agent's (deltas, dead letters of refused outputs) or the counters agent's."""
        io, loop = self.io, asyncio.get_running_loop()

        async def run(work: Callable[[], None]) -> None:
            await loop.run_in_executor(io, work)

        return Checkpoint(
            self.publisher_(),
            changelog=changelog,
            write_state=write_state,
            ack=ack,
            deltas_topic=self.config.deltas_topic if records else None,
            dead_letters=self.processor.refused if records else None,
            stats=self.stats,
            run=run,
        )

    async def _thread_chunks(
        self, msgs: Sequence[RawMessage], now: datetime, size: int
    ) -> AsyncIterator[tuple[Sequence[RawMessage], list[Accepted | Rejected]]]:
        """Stage 1 in this process, on the thread pool (Ed25519 in libsodium releases the
        GIL; chunks of ``size`` all submitted at once) or inline (no pool), yielded in input
        order. Inline with ``overlap_checkpoint``, the event loop runs what is ready after each
        chunk (faust's delivery of the next events, the checkpoint in flight's next step)."""
        check = self.processor.check
        parts = [msgs[i : i + size] for i in range(0, len(msgs), size)]
        if self.pool is None:  # inline: no hand-off to a thread, no GIL contention with it
            pause = self.config.overlap_checkpoint
            for part in parts:
                yield part, check(part, now)
                if pause:  # let faust's delivery and the checkpoint in flight run meanwhile
                    await asyncio.sleep(0)
            return
        loop, pool = asyncio.get_running_loop(), self.pool
        futures = [loop.run_in_executor(pool, check, p, now) for p in parts]
        try:
            for part, future in zip(parts, futures, strict=True):
                yield part, await future
        finally:
            for future in futures:
                future.cancel()

    async def process(self, msgs: Sequence[RawMessage], now: datetime) -> tuple[BatchOutput, float]:
        """Stages 1 and 2 of a batch: its output and the seconds spent in stage 2 (the rest
        of the call is stage 1). Stage 1 runs in chunks: inline (the default), or on this
        process's threads or the check processes, where stage 2 of chunk k (here) overlaps
        stage 1 of chunk k+1."""
        processor, pool, clock = self.processor, self.check_pool, time.perf_counter
        size = max(256, -(-len(msgs) // 4))
        chunks = (
            pool.chunks(msgs, now, size)
            if pool is not None
            else self._thread_chunks(msgs, now, size)
        )
        out, finish_s = BatchOutput(), 0.0
        async for part, verdicts in chunks:
            started = clock()
            processor.finish(part, verdicts, now, into=out, last=False)
            finish_s += clock() - started
        started = clock()
        processor.finish((), (), now, into=out, last=True)
        return out, finish_s + clock() - started

    def count(self, out: BatchOutput) -> None:
        """Add a checkpointed batch's outcome to the stats."""
        stats = self.stats
        stats["accepted"] += out.accepted
        stats["duplicates"] += out.duplicates
        for reason, n in out.rejected.items():
            stats[f"rejected.{reason}"] += n

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        if self.check_pool is not None:
            self.check_pool.close()
        if self.pool is not None:
            self.pool.shutdown(wait=False)
        self.io.shutdown(wait=False)
