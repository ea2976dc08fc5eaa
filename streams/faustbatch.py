"""A stream's batches taken from its channel's queue in one go (``faustio.batches``). faust
internals, as in :mod:`streams.faustio` (faust-streaming 0.15.3).

faust's ``Stream.noack_take`` runs the stream's own iteration in a background task (the
"passive drainer") and buffers what it yields. Per event that is an event-loop round trip
(``await sleep(0)``), the channel's ``__anext__`` and three queue ``get`` coroutines, the take's
buffer processor and ``on_merge`` (coroutines), an async generator step; the take itself waits
on an ``asyncio.Event`` for the buffer to fill or the window to pass.

:func:`take_batches` does the same work per event without those: when the stream is the
common case (:func:`unsupported` says why not; then it is ``noack_take``), each batch is up to
``size`` events taken from the channel's queue with its ``get_nowait`` (so faust's pressure
callbacks run as they do: fetching of a partition paused when the buffer fills resumes when it
drains), and every event gets what faust's compiled stream iterator (``faust._cython.streams``,
the one faust's wheel runs) gives it before the take buffers it:

1. an event taken while the app's flow is stopped (a rebalance) or from an older consumer
   generation is dropped, neither tracked nor acked (faust's ``_prepare_event``; its
   pure-Python iterator, run without the compiled one, acks it);
2. the event's message is tracked (``message.tracked``, the consumer's unacked set, the
   ``on_message_in`` sensors), so the consumer waits for its ack before a rebalance or a stop
   completes, and commits nothing of it before (the shell acks each batch: ``faustio.acker``);
3. the ``on_stream_event_in`` sensors; the stream's ``events_total``.

It pays where faust's delivery hands on many messages per event-loop round
(``faustio.fast_delivery``: up to 100); with faust's own drain loop (a round per message) it
is woken per message and saves nothing.

The window: a batch is yielded as soon as it holds ``size`` events, else ``within_s`` after its
first event. faust's take yields what it holds at ticks ``within`` apart from when it began
waiting, so at most ``within`` after a batch's first event too, but a trickle may be cut into
smaller batches. Between batches nothing is taken here; faust's background task, after a take
yielded at a tick, takes and tracks the next event while the agent works, so at a rebalance
faust processes that event after the revoke, where here it is cleared with the buffer,
untracked. Not done, because the worker's batches do not use them: the stream's current event
(faust's take leaves it on whatever event its background task holds while the agent processes a
batch, and the agent's reply logic reads that event's ``Faust-Ag-ReplyTo`` header: here there
is none), and the agent's reply-unwrapping processor (its result is discarded by the take).

An error thrown into the channel (the actor's ``StopAsyncIteration`` when it is cancelled)
ends the batches as it ends faust's iteration and so its take: what was taken before it is
yielded, the error stays in the channel and the stream is stopped; faust's own iteration
checks for errors before each event, so the events queued behind one are not taken. An item in
the queue that is not an event (not something a topic's conductor delivers) hands the stream
over to ``noack_take`` for good, after yielding what was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.agents.agent import Agent
from faust.events import Event
from faust.streams import Stream
from faust.types import ChannelT, EventT
from mode.utils.queues import ThrowableQueue

__all__ = ["take_batches", "unsupported"]

logger = logging.getLogger(__name__)

_UNWRAP = Agent._maybe_unwrap_reply_request


def unsupported(stream: Any, within_s: float) -> str | None:
    """Why :func:`take_batches` leaves ``stream`` to faust's ``noack_take`` (``None``: it
    takes the batches itself)."""
    channel = getattr(stream, "channel", None)
    if not isinstance(stream, Stream):
        return f"not a faust Stream: {type(stream).__name__}"
    if not isinstance(channel, ChannelT) or not getattr(channel, "is_iterator", False):
        return "its channel is not a channel being iterated"
    if not isinstance(channel.queue, ThrowableQueue):
        return f"its channel's queue is a {type(channel.queue).__name__}"
    if type(stream).on_merge is not Stream.on_merge or stream.join_strategy is not None:
        return "it joins"
    if stream.combined or stream._prev is not None or stream._next is not None:
        return "it is combined or derived"
    if stream._passive:
        return "it is iterated already"
    if any(getattr(p, "__func__", None) is not _UNWRAP for p in stream._processors):
        return "it has processors"
    if not within_s > 0:
        return "no batch window"
    return None


def take_batches(stream: Any, size: int, within_s: float) -> AsyncIterator[list[Any]]:
    """The events of ``stream`` in batches of at most ``size``, within ``within_s`` of a
    batch's first event, not acked (see the module)."""
    why = unsupported(stream, within_s)
    if why is not None:
        logger.info("batches by faust's noack_take stream=%s: %s", stream, why)
        faust_take: AsyncIterator[list[Any]] = stream.noack_take(size, within=within_s)
        return faust_take
    batches = _take(stream, size, within_s)
    stream._active_agens.add(batches)  # closed by Stream.on_stop, as faust's takes are
    return batches


async def _take(stream: Any, size: int, within_s: float) -> AsyncIterator[list[Any]]:
    channel = stream.channel
    taker = _Taker(stream, channel.queue)
    stream._finalized = True
    started = await stream.maybe_start()
    try:
        while not stream.should_stop:
            batch = await taker.batch(size, within_s)
            if batch:
                yield batch
            if taker.ended:
                logger.info("channel error, batches end stream=%s: %r", stream, taker.errors[0])
                return
            if taker.handed_over:
                logger.info("batches by faust's noack_take from now stream=%s", stream)
                async for batch in stream.noack_take(size, within=within_s):
                    yield batch
                return
    finally:
        stream._channel_stop_iteration(channel)
        if started:
            await stream.stop()
            stream.service_reset()


class _Taker:
    """One stream's batches, from its channel's queue."""

    def __init__(self, stream: Any, queue: ThrowableQueue[Any]) -> None:
        self.stream = stream
        self.queue = queue
        self.app = app = stream.app
        self.flow = app.flow_control
        self.unacked = app.consumer.unacked
        self.errors = queue._errors
        self.handed_over = self.ended = False
        self.loop = asyncio.get_running_loop()

    async def batch(self, size: int, within_s: float) -> list[Any]:
        """Up to ``size`` events: waits for a first one, then at most ``within_s`` for the
        rest (less when the stream stops, the channel has an error, or an unusual item hands
        the stream over)."""
        batch: list[Any] = []
        items = self.queue._queue  # type: ignore[attr-defined]  # asyncio.Queue's deque
        errors = self.errors
        deadline: float | None = None
        while len(batch) < size and not self.handed_over:
            if errors:
                self.ended = True
                break
            if items:
                self._take(batch, size)
                if batch and deadline is None:
                    deadline = self.loop.time() + within_s
            elif deadline is None:
                if self.stream.should_stop:
                    break
                await self._arrival(None)
            else:
                left = deadline - self.loop.time()
                if left <= 0:
                    break
                await self._arrival(left)
        return batch

    def _take(self, batch: list[Any], size: int) -> None:
        """Move events from the queue into ``batch`` (steps 1–3 of the module)."""
        queue, stream, app, flow = self.queue, self.stream, self.app, self.flow
        items = queue._queue  # type: ignore[attr-defined]
        get, errors = queue.get_nowait, queue._errors
        acking = app.topics.acking_topics
        track, message_in = self.unacked.add, stream._on_message_in
        event_in = stream._on_stream_event_in
        taken = 0
        while items and len(batch) < size and not errors:
            first = items[0]
            if type(first) is not Event and not isinstance(first, EventT):
                self.handed_over = True
                break
            event = get()
            message = event.message
            if not flow.is_active() or message.generation_id != app.consumer_generation_id:
                continue  # 1. dropped, as faust's compiled iterator drops it
            tp, offset = message.tp, message.offset
            if not message.tracked and message.topic in acking:  # 2.
                message.tracked = True
                track(message)
                message_in(tp, offset, message)
            event_in(tp, offset, stream, event)  # 3.
            batch.append(event)
            taken += 1
        stream.events_total += taken

    async def _arrival(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Until something is put into the empty queue, or ``timeout`` seconds passed; takes
        nothing. Waits as the queue's own ``get`` does (a getter future the next put wakes),
        after what ``get`` does on an empty queue (the pending pressure-drop callbacks: the
        partitions paused on a full buffer fetch again)."""
        queue, loop = self.queue, self.loop
        queue.maybe_endorse_pressure_drop()
        waiter = loop.create_future()
        getters = queue._getters  # type: ignore[attr-defined]
        getters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # thrown into the channel for its reader: kept for it
            queue._errors.appendleft(exc)
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                getters.remove(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
