"""What the app's agents share: the validator, the batch processor, the live counters, the
check pool or threads, the Ed25519 thread, the publisher and its thread, the stats. No faust
here: the app (:mod:`streams.app`) hands in the tables' stores (:mod:`streams.faustio`)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from asyncio import Future
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from schemas import KeyRegistry
from schemas.hierarchy import Hierarchy
from schemas.signing import SignatureCheck, verify_check
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

__all__ = ["StreamsRuntime", "Verifications"]

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
        # stage 1 inline but its Ed25519 verifications on a thread (signature_thread)
        self.signer: ThreadPoolExecutor | None = None
        if config.signature_thread and self.pool is None and config.verify_processes == 0:
            self.signer = ThreadPoolExecutor(1, thread_name_prefix="ed25519")
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
        order."""
        check = self.processor.check
        parts = [msgs[i : i + size] for i in range(0, len(msgs), size)]
        if self.signer is not None:
            async for chunk in self._signed_chunks(parts, now, self.signer):
                yield chunk
            return
        if self.pool is None:  # inline: no hand-off to a thread, no GIL contention with it
            for part in parts:
                yield part, check(part, now)
            return
        loop, pool = asyncio.get_running_loop(), self.pool
        futures = [loop.run_in_executor(pool, check, p, now) for p in parts]
        try:
            for part, future in zip(parts, futures, strict=True):
                yield part, await future
        finally:
            for future in futures:
                future.cancel()

    async def _signed_chunks(
        self, parts: Sequence[Sequence[RawMessage]], now: datetime, signer: ThreadPoolExecutor
    ) -> AsyncIterator[tuple[Sequence[RawMessage], list[Accepted | Rejected]]]:
        """Stage 1 on the event loop but the Ed25519 verifications, which a chunk hands to the
        ``signer`` thread (:class:`Verifications`): they run while the loop prepares the next
        chunk and finishes the one before (the caller's stage 2 between two yields); what the
        thread has not verified when the loop needs it, the loop verifies."""
        validator, loop = self.validator, asyncio.get_running_loop()
        pending: list[tuple[Sequence[RawMessage], list[Any], Verifications, Future[None]]] = []

        async def concluded() -> tuple[Sequence[RawMessage], list[Accepted | Rejected]]:
            part, items, verifications, running = pending.pop(0)
            return part, validator.conclude(items, await verifications.outcomes(running), now)

        try:
            for part in parts:
                items, checks = validator.prepare(part, now)
                verifications = Verifications(checks)
                pending.append(
                    (part, items, verifications, loop.run_in_executor(signer, verifications.run))
                )
                if len(pending) > 1:
                    yield await concluded()
            while pending:
                yield await concluded()
        finally:
            for *_, running in pending:
                running.cancel()

    async def process(self, msgs: Sequence[RawMessage], now: datetime) -> tuple[BatchOutput, float]:
        """Stages 1 and 2 of a batch: its output and the seconds spent in stage 2 (the rest
        of the call is stage 1). Stage 1 runs in chunks: inline with its Ed25519
        verifications on the signature thread (the default), wholly inline, or on this
        process's threads or the check processes; stage 2 of chunk k (here) overlaps the
        verifications, or stage 1, of chunk k+1."""
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
        if self.signer is not None:
            self.signer.shutdown(wait=False)
        self.io.shutdown(wait=False)


class Verifications:
    """A chunk's signature checks (``schemas.signing.SignatureCheck``), each verified by
    whoever claims it first: the signature thread (:meth:`run`), or the event loop when it
    needs the outcomes before the thread is through (:meth:`outcomes`) — so the loop never
    sleeps on a thread the machine has no core for."""

    def __init__(self, checks: Sequence[SignatureCheck]) -> None:
        self.checks = checks
        self._outcomes: list[bool | None] = [None] * len(checks)
        self._claims = itertools.count()  # next() is atomic under the GIL

    def run(self) -> None:
        """Verify the checks nobody claimed yet, one at a time (an unexpected error is
        ``False``: the event is then checked again whole, which gives its verdict)."""
        checks, outcomes, claims = self.checks, self._outcomes, self._claims
        while (i := next(claims)) < len(checks):
            try:
                outcomes[i] = verify_check(checks[i])
            except Exception:
                outcomes[i] = False

    async def outcomes(self, running: asyncio.Future[None]) -> list[bool]:
        """Every outcome: the loop verifies what is left, then waits for the one check the
        thread may be verifying (``running``: its :meth:`run`)."""
        self.run()
        if None in self._outcomes:
            await running
        return [bool(o) for o in self._outcomes]
