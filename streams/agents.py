"""The two agents' batch handling, without faust (``streams.app`` feeds them faust's batches).

- :class:`ValidateAgent`: a raw batch → the guarded events (:class:`GuardedInput`) → stages 1
  and 2 (:meth:`StreamsRuntime.process`) → :meth:`Checkpoint.commit` (outputs → changelog →
  disk → ack) → stats. Logs ``validate progress`` (cumulative seconds per stage) every 10 s.
  With ``overlap`` (``StreamsConfig.overlap_checkpoint``) the checkpoint is begun
  (:meth:`Checkpoint.begin`) and the next batch is processed while it runs; that batch's
  checkpoint begins once this one settled (:meth:`Checkpoint.settle`, which raises its
  failure). The app settles the last one when the stream ends (:meth:`ValidateAgent.settle`).
- :class:`CountAgent`: a batch of aggregate deltas → :class:`LiveCounters` (idempotent by
  source offset) → the changed values as ``aggregates.live`` messages →
  :meth:`Checkpoint.commit` (outputs → changelog → ack).

Both ack every event of a batch, those the guard held back for a re-fetch included (faust
waits for every event it delivered to be acked before it commits on a rebalance or a stop);
an offset past a jump is never committed: faust commits only
:meth:`GuardedInput.committable`, which the checkpoint's ack step
(:meth:`GuardedInput.acking`) moves over the events the guard let through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from schemas.envelope import format_time
from schemas.freshness import CE_TIME_HEADER
from streams.aggregate import LiveCounters, is_counter_key
from streams.checkpoint import Checkpoint
from streams.offsets import GuardedInput
from streams.pipeline import BatchOutput, OutMessage
from streams.runtime import StreamsRuntime
from streams.validate import RawMessage

__all__ = ["CountAgent", "ValidateAgent", "live_messages"]

logger = logging.getLogger(__name__)

E = TypeVar("E")

_STAGES = ("wait_s", "prepare_s", "check_s", "finish_s", "publish_s", "events", "batches")


class ValidateAgent(Generic[E]):
    """The raw topic's agent, one batch at a time (:meth:`handle`)."""

    def __init__(
        self,
        runtime: StreamsRuntime,
        source: GuardedInput[E],
        checkpoint: Checkpoint[E],
        messages: Callable[[Sequence[E]], list[RawMessage]],
        *,
        log_every_s: float = 10.0,
        overlap: bool = False,
    ) -> None:
        self.runtime = runtime
        self.source = source
        self.checkpoint = checkpoint
        self.messages = messages
        self.overlap = overlap
        self.log_every_s = log_every_s
        self.timing: dict[str, float] = dict.fromkeys(_STAGES, 0.0)
        self._ended = self._logged = time.perf_counter()

    async def handle(self, batch: Sequence[E]) -> int:
        """Process and checkpoint one batch; the number of events processed."""
        t0 = time.perf_counter()
        timing = self.timing
        timing["wait_s"] += t0 - self._ended
        msgs = self.messages(await self.source.admit(batch))
        out = BatchOutput()
        finish_s = 0.0
        t1 = t2 = time.perf_counter()
        if msgs:  # else: everything held back for a re-fetch (still acked: see the module)
            out, finish_s = await self.runtime.process(msgs, datetime.now(UTC))
            t2 = time.perf_counter()
        if self.overlap:  # the batch before's four steps, then this one's begin
            await self.checkpoint.settle()
            self.checkpoint.begin(out, batch, lambda: self.runtime.count(out))
        else:
            await self.checkpoint.commit(out, batch)
            self.runtime.count(out)
        self._ended = ended = time.perf_counter()
        timing["prepare_s"] += t1 - t0
        timing["check_s"] += t2 - t1 - finish_s
        timing["finish_s"] += finish_s
        timing["publish_s"] += ended - t2
        timing["events"] += len(msgs)
        timing["batches"] += 1
        self._log(ended, len(msgs), out)
        return len(msgs)

    async def settle(self) -> None:
        """Wait until the checkpoint in flight (if any) is done; raise its failure."""
        await self.checkpoint.settle()

    def _log(self, now: float, events: int, out: BatchOutput) -> None:
        if now - self._logged >= self.log_every_s:
            self._logged = now
            timing = {**self.timing, **self.checkpoint.timing}
            progress = " ".join(f"{k}={v:.2f}" for k, v in timing.items())
            logger.info("validate progress %s", progress)
        if out.rejected:
            logger.info(
                "batch events=%d accepted=%d duplicates=%d rejected=%s",
                events,
                out.accepted,
                out.duplicates,
                dict(out.rejected),
            )


class CountAgent(Generic[E]):
    """The aggregate-delta topic's agent, one batch at a time (:meth:`handle`)."""

    def __init__(
        self,
        runtime: StreamsRuntime,
        source: GuardedInput[E],
        checkpoint: Checkpoint[E],
        deltas: Callable[[E], tuple[int, Mapping[str, Any]]],
    ) -> None:
        self.runtime = runtime
        self.source = source
        self.checkpoint = checkpoint
        self.deltas = deltas

    async def handle(self, batch: Sequence[E]) -> int:
        """Apply and checkpoint one batch; the number of events applied."""
        live = self.runtime.counters
        changed: dict[str, tuple[Any, int]] = {}
        events = await self.source.admit(batch)
        for e in events:
            q, message = self.deltas(e)
            for key, value in live.apply(q, message).items():
                changed[key] = (value, q)
        out = BatchOutput(
            outputs=live_messages(self.runtime.aggregates_topic, changed, live, datetime.now(UTC)),
            state=[(k, orjson.dumps(v), q) for k, (v, q) in changed.items()],
        )
        await self.checkpoint.commit(out, batch)
        self.runtime.stats["aggregates.updates"] += len(out.outputs)
        return len(events)


def live_messages(
    topic: str, changed: Mapping[str, tuple[Any, int]], live: LiveCounters, now: datetime
) -> list[OutMessage]:
    """The ``aggregates.live`` messages of the ``changed`` counters (key ``unit|period|
    element``); each carries the newest event time it reflects (``event_time``, also the
    ``ce_time`` header: the monitor's freshness)."""
    updated_at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    outputs = []
    for key, (value, _q) in changed.items():
        if not is_counter_key(key):
            continue
        unit, period, element = key.split("|", 2)
        doc = {
            "unit": unit,
            "tier": value[0],
            "period": period,
            "element": element,
            "value": value[1],
            "updated_at": updated_at,
        }
        headers: list[tuple[str, bytes]] = []
        event_ms = live.event_ms.pop(key, None)
        if event_ms is not None:
            event_time = format_time(datetime.fromtimestamp(event_ms / 1000, UTC))
            doc["event_time"] = event_time
            headers.append((CE_TIME_HEADER, event_time.encode()))
        outputs.append(OutMessage(topic, key.encode(), orjson.dumps(doc), headers))
    return outputs
