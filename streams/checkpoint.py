"""A batch's checkpoint: the order that makes the stream worker at-least-once. No faust here.

:meth:`Checkpoint.commit` takes what one batch produced (a :class:`BatchOutput`) and the
batch's input events, and runs four numbered steps, each only after the one before it has
returned:

1. **outputs**: produce the outputs (tier topics, DLQ, live aggregates) and the aggregate
   deltas, flush: every one acknowledged by the broker. An output the broker refuses for
   itself (``streams.output.PER_MESSAGE_ERRORS``) is sent again alone, then its input is
   dead-lettered ``output_rejected`` (:meth:`Checkpoint.step1_outputs`);
2. **changelog**: produce the batch's changed states to the table's changelog topic (faust's
   JSON key/value layout, explicit partition = the input partition), flush;
3. **disk**: write the changed states to the table's store (RocksDB; the memory store is told
   which partition each key belongs to);
4. **ack**: ack the batch's input events; faust commits their offsets at its next commit.

A step that fails raises and the later steps are not done: the events are not acked, the
worker stops (``CrashingSupervisor``) and a restarted worker processes the batch again from
the committed offset, after restoring the table from its changelog. Nothing is lost:

- a failure at step 1 or 2 leaves the disk as it was (the state never runs ahead of what the
  changelog can rebuild); the re-processed batch publishes its outputs again (the sinks
  dedupe on ``event_id``, the DLQ on the source coordinates) and its deltas again (the
  counting side skips entries at or below its high-water offset per source partition), so
  nothing is counted twice;
- a failure at step 3 or 4 leaves the changelog ahead of the disk; the restore replays it,
  and the re-processed events are :class:`~streams.validate.Duplicate`\\s (dropped: their
  outputs are already durable).

**Overlapped** (``StreamsConfig.overlap_checkpoint``): :meth:`Checkpoint.begin` runs the four
steps of batch k as a task and returns, so the agent processes batch k+1 (stages 1 and 2) while
k's flushes wait for the broker on the publishing thread; before it begins k+1's checkpoint the
agent awaits k's (:meth:`Checkpoint.settle`: all four steps, or k's failure raised). So
checkpoints, and acks, stay one at a time and in batch order; k+1's outputs, changelog, disk
writes and ack all come after k's ack. A failed checkpoint fails every later ``settle`` (the
agent raises, the worker stops; k+1 is never published, written to disk or acked) and is also
reported to ``on_failure`` (the app wakes the agent waiting for its next batch with it). Stage
2 of k+1 sees k's changed states before k's step 3 wrote them: the state store keeps drained
changes readable until they are written (``DiskState``'s pending changes; the memory store
holds them anyway).

The model is quix-streams' ``checkpointing/checkpoint.py`` (one class, numbered steps); the
collaborators are small protocols, so ``tests/unit/streams/test_checkpoint.py`` drives the
steps with fakes and injects a failure at each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import orjson

from schemas import Reason
from streams.exceptions import OutputError
from streams.pipeline import BatchOutput, OutMessage

__all__ = ["Checkpoint", "DeadLetters", "Producer", "Refusal", "StateChanges"]

logger = logging.getLogger(__name__)

E = TypeVar("E")
#: ``(key, changelog value, partition)`` of each state a batch changed
StateChanges = list[tuple[str, bytes, int]]
#: builds the dead letters of refused outputs (``BatchProcessor.refused``)
DeadLetters = Callable[[Sequence[tuple[OutMessage, str]], datetime], list[OutMessage]]


class Refusal(Protocol):
    """A message the producer or the broker refused for itself (``streams.output.Refused``)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def error(self) -> str: ...


class Producer(Protocol):
    """What the checkpoint needs of a producer (``streams.output.BatchPublisher``)."""

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None: ...

    def produce_many(self, messages: Iterable[OutMessage]) -> None: ...

    def produce_partitioned(
        self, topic: str, messages: Iterable[tuple[bytes | None, bytes | None, int]]
    ) -> None: ...

    def flush(self, timeout_s: float = 60.0) -> Sequence[Refusal]: ...


def _inline(work: Callable[[], None]) -> Awaitable[None]:
    async def run() -> None:
        work()

    return run()


def _no_dead_letters(refusals: Sequence[tuple[OutMessage, str]], now: datetime) -> list[Any]:
    if refusals:  # not one input's output (an aggregate): the batch fails and is retried
        m, error = refusals[0]
        raise OutputError(f"an output to {m.topic} was refused: {error}")
    return []


class Checkpoint(Generic[E]):
    """The checkpoint order of one agent's batches (one instance per agent, reused).

    ``run`` runs the blocking producer steps (1 and 2) off the event loop (the shell passes
    its publishing thread; default: inline); ``write_state`` is step 3, ``ack`` step 4."""

    def __init__(
        self,
        producer: Producer,
        *,
        changelog: str,
        write_state: Callable[[StateChanges], None],
        ack: Callable[[Sequence[E]], Awaitable[None]],
        deltas_topic: str | None = None,
        dead_letters: DeadLetters | None = None,
        stats: Counter[str] | None = None,
        run: Callable[[Callable[[], None]], Awaitable[None]] = _inline,
        timing: dict[str, float] | None = None,
    ) -> None:
        self.producer = producer
        self.changelog = changelog
        self.write_state = write_state
        self.ack = ack
        self.deltas_topic = deltas_topic
        self.dead_letters: DeadLetters = dead_letters or _no_dead_letters
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.run = run
        #: cumulative seconds per step (``outputs_s`` and ``changelog_s`` on the producer's
        #: thread, ``flush_s`` of them waiting for acknowledgements, ``handoff_s`` the trip
        #: there and back, ``disk_s``, ``ack_s``)
        self.timing: dict[str, float] = timing if timing is not None else {}
        for k in ("outputs_s", "changelog_s", "flush_s", "handoff_s", "disk_s", "ack_s"):
            self.timing.setdefault(k, 0.0)
        #: called with the failure of a checkpoint run by :meth:`begin` (as it happens)
        self.on_failure: Callable[[BaseException], None] | None = None
        self._in_flight: asyncio.Task[None] | None = None

    def begin(
        self, out: BatchOutput, events: Sequence[E], then: Callable[[], None] | None = None
    ) -> None:
        """Start :meth:`commit` of a batch as a task and return (``then`` runs once it
        succeeded). The checkpoint begun before must have been settled (:meth:`settle`)."""
        if self._in_flight is not None:
            raise RuntimeError("a checkpoint is still in flight: settle() it first")

        async def steps() -> None:
            await self.commit(out, events)
            if then is not None:
                then()

        task = asyncio.get_running_loop().create_task(steps())
        self._in_flight = task
        task.add_done_callback(self._done)

    async def settle(self) -> None:
        """Wait until the checkpoint in flight (:meth:`begin`) has done its four steps; raise
        its failure, at this call and every later one. Cancelling the caller leaves it running."""
        task = self._in_flight
        if task is not None:
            await asyncio.shield(task)
            if self._in_flight is task:
                self._in_flight = None

    def _done(self, task: asyncio.Task[None]) -> None:
        exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if exc is None:
            if self._in_flight is task:
                self._in_flight = None
            return
        logger.error("checkpoint failed: the worker stops error=%r", exc)
        if self.on_failure is not None:
            self.on_failure(exc)

    async def commit(self, out: BatchOutput, events: Sequence[E]) -> None:
        """Steps 1 to 4 for one batch: ``out`` is what it produced, ``events`` its input
        events (all of them, those held back for a re-fetch included: faust waits for every
        event it delivered to be acked)."""
        timing, clock = self.timing, time.perf_counter
        on_thread = [0.0, 0.0]

        def publish() -> None:  # steps 1 and 2 in one trip to the producer's thread
            t0 = clock()
            self.step1_outputs(out)
            t1 = clock()
            self.step2_changelog(out.state)
            on_thread[:] = [t1 - t0, clock() - t1]

        t0 = clock()
        await self.run(publish)
        t1 = clock()
        timing["outputs_s"] += on_thread[0]
        timing["changelog_s"] += on_thread[1]
        timing["handoff_s"] += t1 - t0 - sum(on_thread)
        self.step3_disk(out.state)
        t2 = clock()
        await self.step4_ack(events)
        timing["disk_s"] += t2 - t1
        timing["ack_s"] += clock() - t2

    def step1_outputs(self, out: BatchOutput) -> None:
        """Produce the outputs and deltas, flush; refused outputs are retried alone, then
        dead-lettered (raises :class:`OutputError` when that fails too)."""
        producer = self.producer
        producer.produce_many(out.outputs)
        if out.deltas:
            if self.deltas_topic is None:
                raise ValueError("deltas without a deltas topic")
            dumps = orjson.dumps
            producer.produce_partitioned(
                self.deltas_topic, [(str(q).encode(), dumps(p), q) for q, p in out.deltas]
            )
        refused = self._flush()
        if refused:
            self._refused(out.outputs, refused)

    def step2_changelog(self, changes: StateChanges) -> None:
        """Produce the changed states to the changelog (explicit partition), flush."""
        if not changes:
            return
        topic, dumps = self.changelog, orjson.dumps
        self.producer.produce_partitioned(topic, [(dumps(k), v, p) for k, v, p in changes])
        if self._flush():
            raise OutputError(f"the state changelog {topic} was refused by the broker")

    def _flush(self) -> Sequence[Refusal]:
        started = time.perf_counter()
        refused = self.producer.flush()
        self.timing["flush_s"] += time.perf_counter() - started
        return refused

    def step3_disk(self, changes: StateChanges) -> None:
        """Write the changed states to the table's store (after the changelog has them)."""
        if changes:
            self.write_state(changes)

    async def step4_ack(self, events: Sequence[E]) -> None:
        """Ack the input events: only now may faust commit their offsets."""
        await self.ack(events)

    def _refused(self, sent: Sequence[OutMessage], refused: Sequence[Refusal]) -> None:
        """Outputs the broker refused for themselves:

        a. each is sent again alone (librdkafka refuses a whole batch when one message in it
           is too large: its batch-mates are innocent);
        b. the inputs of those refused alone are dead-lettered (``dead_letters``);
        c. a dead letter refused in turn is sent again reduced (``BatchProcessor.refused``);
        d. anything refused after that raises :class:`OutputError` (the batch is processed
           again)."""
        producer = self.producer
        alone: list[tuple[OutMessage, str]] = []
        for m, _error in _match(sent, refused):
            producer.produce(m.topic, m.value, m.key, m.headers)
            again = producer.flush()
            if again:
                alone.append((m, again[0].error))
                self.stats[f"rejected.{Reason.OUTPUT_REJECTED.value}"] += 1
        letters = self.dead_letters(alone, datetime.now(UTC))
        for _round in range(2):
            for m in letters:
                producer.produce(m.topic, m.value, m.key, m.headers)
            refused = producer.flush()
            if not refused:
                return
            letters = self.dead_letters(_match(letters, refused), datetime.now(UTC))
        raise OutputError(f"dead letters refused by the broker: {refused[0].error}")


def _match(sent: Sequence[OutMessage], refused: Sequence[Refusal]) -> list[tuple[OutMessage, str]]:
    """The messages of ``sent`` that were ``refused``, with why."""
    out = []
    for r in refused:
        m = next((m for m in sent if (m.topic, m.key, m.value) == (r.topic, r.key, r.value)), None)
        if m is None:
            raise OutputError(f"a message to {r.topic} was refused: {r.error}")
        out.append((m, r.error))
    return out
