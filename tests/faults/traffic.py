"""Fault-run traffic: what to publish (simulated events, cut in phases), what the stores must
end up holding (:class:`Expectation`), and a publisher that remembers where every message
landed on the raw topic."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from producers.config import SimulationConfig
from producers.simulator import SimEvent, SimulationResult, simulate
from producers.writers import fast_producer_config
from schemas import KafkaMessage, Reason, RecordChange
from schemas.kafka import KafkaConnection, producer
from schemas.partition import partition_for
from schemas.wire import decode
from tests.helpers import newest

__all__ = [
    "Expectation",
    "Outgoing",
    "Publisher",
    "from_sim",
    "kill_run_traffic",
    "phases",
    "simulated",
    "valid_change",
]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: a label (the event id, or a case name for bad input without
    one), the message, its CreateTime (None: now) and the reason it must be rejected with."""

    label: str
    message: KafkaMessage
    timestamp_ms: int | None = None
    reason: Reason | None = None
    change: RecordChange | None = None
    wrong_partition: bool = False  # publish on the partition after murmur2's


def from_sim(ev: SimEvent, timestamp_ms: int | None = None) -> Outgoing:
    """A simulated event as an outgoing message (valid ones keep their change)."""
    return Outgoing(
        ev.event_id,
        ev.message,
        timestamp_ms,
        ev.expected_reason,
        ev.change if ev.bad is None else None,
    )


def valid_change(msg: KafkaMessage) -> RecordChange:
    """Decode a message the validator must accept (test-corpus setup messages)."""
    return decode(msg.value, msg.headers, key=msg.key)


@dataclass
class Expectation:
    """What was published: valid changes by event id, bad inputs by label."""

    valid: dict[str, RecordChange] = field(default_factory=dict)
    bad: dict[str, Reason] = field(default_factory=dict)

    def add(self, items: Iterable[Outgoing]) -> None:
        for o in items:
            if o.reason is not None:
                assert o.label not in self.bad, f"duplicate label {o.label}"
                self.bad[o.label] = o.reason
            else:
                change = o.change or valid_change(o.message)
                self.valid[change.id] = change

    def current(self) -> dict[tuple[str, str], str]:
        """(record type, record id) → event id of the record's current state."""
        latest = newest(
            self.valid.values(),
            key=lambda c: (c.record_type.value, c.record_id),
            order=lambda c: (c.record_version, c.time, c.id),
        )
        return {k: c.id for k, c in latest.items() if c.op.value != "delete"}


class Publisher:
    """Produces to the raw topic (idempotent, acks=all) and keeps every message's
    (partition, offset) from its delivery report. Survives a broker outage: messages wait in
    librdkafka's queue (message.timeout.ms 5 minutes) until the broker is back."""

    def __init__(self, kafka: KafkaConnection, topic: str, partitions: int) -> None:
        cfg = fast_producer_config()
        # messages up to the broker's limit (the hostile corpus has a 1 MB header)
        cfg.update({"message.timeout.ms": 300_000, "linger.ms": 20, "message.max.bytes": 1_048_576})
        self.producer: Producer = producer(kafka, cfg)
        self.topic = topic
        self.partitions = partitions
        self.coords: dict[tuple[int, int], str] = {}
        self.sent_ms: dict[str, int] = {}  # label → raw message timestamp (ms)
        self.failed: list[tuple[str, KafkaError]] = []
        self.sent = 0

    def send(self, items: Sequence[Outgoing]) -> None:
        for o in items:

            def done(err: KafkaError | None, msg: Message, label: str = o.label) -> None:
                if err is not None:
                    self.failed.append((label, err))
                else:
                    self.coords[(msg.partition() or 0, msg.offset() or 0)] = label
                    self.sent_ms[label] = msg.timestamp()[1]

            kwargs: dict[str, Any] = {}
            if o.timestamp_ms is not None:
                kwargs["timestamp"] = o.timestamp_ms
            m = o.message
            if o.wrong_partition:
                right = partition_for(m.key or b"", self.partitions)
                kwargs["partition"] = (right + 1) % self.partitions
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        value=m.value,
                        key=m.key,
                        headers=list(m.headers),
                        on_delivery=done,
                        **kwargs,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
        self.sent += len(items)

    def close(self) -> None:
        """Drop what is still queued and close the client (before its broker goes away)."""
        self.producer.purge()
        self.producer.flush(1.0)
        self.producer.close()

    def flush(self, timeout_s: float = 120.0) -> None:
        left = self.producer.flush(timeout_s)
        assert not self.failed, f"deliveries failed: {self.failed[:3]}"
        assert left == 0 and len(self.coords) == self.sent, (
            f"{left} not delivered; {len(self.coords)} of {self.sent} confirmed"
        )


def simulated(
    seed: int,
    *,
    start: date,
    days: int,
    n_stations: int = 6,
    scale: float = 0.05,
    bad_fraction: float = 0.0,
    provinces: tuple[str, ...] = ("04",),
    submissions: bool = True,
    key_seed: bytes | None = None,
) -> tuple[list[SimEvent], SimulationResult]:
    """Deterministic simulated traffic (no random outages: the tests inject their own), signed
    with keys derived from ``key_seed`` (default: the development seed)."""
    result = simulate(
        SimulationConfig(
            seed=seed,
            provinces=provinces,
            n_stations=n_stations,
            start=start.isoformat(),
            days=days,
            scale=scale,
            bad_fraction=bad_fraction,
            offline_station_share=0.0,
            submissions=submissions,
            **({} if key_seed is None else {"key_seed": key_seed}),
        )
    )
    return list(result.events), result


def phases(items: Sequence[Outgoing], *shares: float) -> list[list[Outgoing]]:
    """Cut ``items`` in consecutive parts of the given shares (the rest is the last part)."""
    out: list[list[Outgoing]] = []
    at = 0
    for share in shares:
        n = int(len(items) * share)
        out.append(list(items[at : at + n]))
        at += n
    out.append(list(items[at:]))
    return out


def kill_run_traffic(
    seed: int, bad_fraction: float
) -> tuple[Expectation, list[Outgoing], list[Outgoing], list[Outgoing]]:
    """The traffic of a kill run: five stations over five days, what the stores must end
    up holding, and its three phases (before the fault 50 %, during it 30 %, after 20 %)."""
    start = date.today() - timedelta(days=6)
    events, _ = simulated(seed, start=start, days=5, n_stations=5, bad_fraction=bad_fraction)
    out = [from_sim(e) for e in events]
    exp = Expectation()
    exp.add(out)
    before, during, after = phases(out, 0.5, 0.3)
    return exp, before, during, after
