"""faust-streaming workarounds and accessors the app needs (its consumer internals, offsets,
seeks). Every use of a private faust/aiokafka attribute is here, so an upgrade is checked in
one place (faust-streaming 0.15.3, aiokafka 0.14).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from streams.validate import RawMessage

__all__ = [
    "baseline_offsets",
    "broker_committed",
    "committed_offsets",
    "coordinates",
    "disable_gap_acks",
    "kafka_time",
    "raw_headers",
    "raw_messages",
    "safe_seek",
    "seek_back",
]

logger = logging.getLogger(__name__)


def raw_headers(raw: Any) -> list[tuple[str, bytes | None]]:
    if not raw:
        return []
    if isinstance(raw, Mapping):
        return list(raw.items())
    return list(raw)


def coordinates(event: Any) -> tuple[int, int]:
    return event.message.partition, event.message.offset


def committed_offsets(app: faust.App, topic: str) -> dict[int, int | None]:
    offsets = getattr(app.consumer, "_committed_offset", {}) or {}
    return {tp.partition: off for tp, off in offsets.items() if tp.topic == topic}


def disable_gap_acks(app: faust.App, topics: set[str]) -> None:
    """faust acks the offsets between two non-consecutive messages as a "gap" (for compacted
    topics); on our append-only inputs a jump is a stale fetch, so never ack across it."""
    consumer: Any = app.consumer
    if getattr(consumer, "_tuyen_gap_guard", False):
        return
    original = consumer._add_gap

    async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic in topics:
            logger.warning(
                "offset jump topic=%s partition=%d from=%d to=%d: not acked as a gap",
                tp.topic,
                tp.partition,
                offset_from,
                offset_to,
            )
            return
        await original(tp, offset_from, offset_to)

    consumer._add_gap = add_gap
    consumer._tuyen_gap_guard = True


async def broker_committed(consumer: Any, tp: Any, *, never: int | None = 0) -> int | None:
    """The group's committed offset of ``tp`` from the broker (faust's cache can lack it);
    ``never`` when the group never committed one; ``None`` when the broker cannot say."""
    try:
        thread = consumer._thread
        inner = thread._ensure_consumer()
        from aiokafka import TopicPartition as AioTP

        offset = await thread.call_thread(inner.committed, AioTP(tp.topic, tp.partition))
    except Exception as exc:  # an aid: never crash the worker over it
        logger.warning("could not read the committed offset of %s from the broker: %r", tp, exc)
        return None
    return int(offset) if offset is not None else never


async def baseline_offsets(app: faust.App, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """The group's committed offsets of ``partitions`` of ``topic`` asked from the broker (for
    :class:`~streams.offsets.OffsetGuard` when faust's cache lacks them); a partition never
    committed, or that the broker cannot answer for, is left out."""
    from faust.types import TP

    found: dict[int, int] = {}
    for p in partitions:
        offset = await broker_committed(app.consumer, TP(topic, p), never=None)
        if offset is not None:
            found[p] = offset
    logger.info("offset baseline from the broker topic=%s committed=%s", topic, found)
    return found


async def seek_back(app: faust.App, topic: str, seeks: Mapping[int, int]) -> None:
    from faust.types import TP

    for partition, offset in seeks.items():
        logger.warning(
            "offset jump topic=%s partition=%d: seeking back to offset=%d",
            topic,
            partition,
            offset,
        )
        await safe_seek(app.consumer, TP(topic, partition), offset)


async def safe_seek(consumer: Any, tp: Any, offset: int) -> None:
    """Seek on the consumer's own thread.

    faust's ``Consumer.seek`` calls aiokafka's ``seek`` from the event-loop thread while the
    consumer thread may be inside ``Fetcher.fetched_records``; the two race on the fetcher's
    buffers (``KeyError`` in ``del self._records[tp]``, seen crashing a worker). ``seek_wait``
    runs the seek on the consumer thread instead.
    """
    thread = getattr(consumer, "_thread", None)
    if thread is None or not hasattr(thread, "seek_wait"):
        await consumer.seek(tp, offset)
        return
    await thread.seek_wait({tp: offset})
    consumer._read_offset[tp] = offset if offset else None


def kafka_time(seconds: float | None) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC)


def raw_messages(events: Sequence[Any]) -> list[RawMessage]:
    """faust events → the pure pipeline's :class:`RawMessage` (coordinates included)."""
    return [
        RawMessage(
            key=e.message.key,
            value=e.message.value,
            headers=raw_headers(e.message.headers),
            topic=e.message.topic,
            partition=e.message.partition,
            offset=e.message.offset,
            timestamp=kafka_time(e.message.timestamp),
        )
        for e in events
    ]
