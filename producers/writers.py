"""Where simulated (or imported) events go: Kafka directly, station outboxes, a JSONL file.

The only module of the simulator path that imports confluent-kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from confluent_kafka import KafkaError, Message

from producers.config import ProducerConfig
from producers.exceptions import DeliveryError
from producers.sdk.client import StationClient
from producers.simulator.model import SimEvent
from schemas import KafkaMessage
from schemas.kafka import KafkaConnection, producer
from schemas.partition import PARTITIONER

logger = logging.getLogger(__name__)

Tick = Callable[[int], None]  # called with the number of events just handled


def fast_producer_config() -> dict[str, str | int | bool]:
    """Idempotent, acks=all, lz4, large batches: the demo's fast path."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "partitioner": PARTITIONER,  # the contract's (murmur2)
    }


def write_kafka(
    events: Iterable[SimEvent],
    kafka: KafkaConnection,
    topic: str,
    *,
    tick: Tick | None = None,
    flush_timeout: float = 120.0,
    stamped: bool = False,
) -> int:
    """Produce every event straight to ``topic`` (no outbox). Returns the count delivered;
    raises :class:`DeliveryError` if any delivery failed. ``stamped``: each message's Kafka
    timestamp is its event's time (a replay that looks like the stations sent it as they
    entered it, where the topic keeps CreateTime), else the producer's clock."""
    pairs = ((ev.message, int(ev.time.timestamp() * 1000) if stamped else 0) for ev in events)
    return _produce(pairs, kafka, topic, tick=tick, flush_timeout=flush_timeout)


def produce_messages(
    messages: Iterable[KafkaMessage],
    kafka: KafkaConnection,
    topic: str,
    *,
    tick: Tick | None = None,
    flush_timeout: float = 120.0,
) -> int:
    """Produce encoded messages to ``topic``, waiting when the local queue is full; returns
    the count delivered, raises :class:`DeliveryError` if any delivery failed."""
    pairs = ((m, 0) for m in messages)
    return _produce(pairs, kafka, topic, tick=tick, flush_timeout=flush_timeout)


def _produce(
    messages: Iterable[tuple[KafkaMessage, int]],
    kafka: KafkaConnection,
    topic: str,
    *,
    tick: Tick | None,
    flush_timeout: float,
) -> int:
    """(message, timestamp in ms or 0 for the producer's clock) pairs to ``topic``."""
    out = producer(kafka, fast_producer_config())
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    n = 0
    for m, ts in messages:
        while True:
            try:
                out.produce(
                    topic,
                    value=m.value,
                    key=m.key,
                    headers=m.headers,  # type: ignore[arg-type]
                    on_delivery=on_delivery,
                    timestamp=ts,
                )
                break
            except BufferError:
                out.poll(0.1)
        n += 1
        if n % 1000 == 0:
            out.poll(0)
            if tick is not None:
                tick(1000)
    left = out.flush(flush_timeout)
    if tick is not None:
        tick(n % 1000)
    if failed or left:
        raise DeliveryError(f"{len(failed)} deliveries failed, {left} not confirmed: {failed[:3]}")
    return n


def write_jsonl(events: Iterable[SimEvent], path: Path, *, tick: Tick | None = None) -> int:
    """One CloudEvents structured-mode line per event (``tuyen publish`` input)."""
    n = 0
    with path.open("wb") as f:
        for ev in events:
            f.write(ev.json_line())
            f.write(b"\n")
            n += 1
            if tick is not None and n % 1000 == 0:
                tick(1000)
    if tick is not None:
        tick(n % 1000)
    return n


def write_outboxes(
    events: Iterable[SimEvent],
    kafka: KafkaConnection,
    topic: str,
    outbox_dir: Path,
    *,
    tick: Tick | None = None,
    flush_timeout: float = 120.0,
) -> int:
    """Each station's events through its own :class:`StationClient` outbox (the SDK path),
    all sharing one producer. Bad events that are not record changes are skipped."""
    shared_config = ProducerConfig(kafka=kafka, topic=topic, outbox_path=outbox_dir)
    shared = producer(kafka, shared_config.producer_settings())
    clients: dict[str, StationClient] = {}
    n = 0
    batch: dict[str, list[SimEvent]] = {}

    def drain() -> None:
        for station, evs in batch.items():
            client = clients.get(station)
            if client is None:
                cfg = shared_config.model_copy(update={"outbox_path": outbox_dir / f"{station}.db"})
                client = StationClient.dev(station, cfg, producer=shared)
                clients[station] = client
            client.submit([c for e in evs if (c := e.change) is not None])
            client.poll(0)
        batch.clear()

    for ev in events:
        if ev.change is None or ev.bad is not None:
            continue
        batch.setdefault(ev.station, []).append(ev)
        n += 1
        if n % 5000 == 0:
            drain()
            if tick is not None:
                tick(5000)
    drain()
    if tick is not None:
        tick(n % 5000)
    left = sum(c.flush(flush_timeout) for c in clients.values())
    for c in clients.values():
        c.close(1.0)
    if left:
        raise DeliveryError(f"{left} events still in the outboxes under {outbox_dir}")
    return n
