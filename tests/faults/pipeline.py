"""Fault-run process control: a whole pipeline (stream worker + sinks as processes) on its
own topic prefix, with waits for the moments a fault is injected at (mid-stream, outputs in
flight) and for the recovery (every consumer group at the end of its input)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from deploy.pipeline import Pipeline, topic_ends
from deploy.topics import apply_topics
from schemas.kafka import KafkaConnection, consumer
from schemas.topics import DLQ, RAW, TIER_DISTRICT, replay_specs, topic_name, topic_specs
from streams.national import national_event_id
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser
from tests.faults.traffic import Expectation, Outgoing, Publisher
from tests.helpers import ConditionTimeout, unique_name, wait_until

__all__ = [
    "PARTITIONS",
    "TIERS",
    "FaultPipeline",
    "kill_and_restart",
    "start_run",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

PARTITIONS = 3
TIERS = ("district", "province", "national")

_TRANSIENT = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
}


def transient(exc: KafkaException) -> bool:
    """A broker that is starting or restarting answers lag queries with these."""
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in _TRANSIENT)


def unless_transient(query: Callable[[], T]) -> T | None:
    """``query()``, or None when the broker answers it with a :func:`transient` error."""
    try:
        return query()
    except KafkaException as exc:
        if transient(exc):
            return None
        raise


@dataclass
class FaultPipeline:
    """The pipeline of one fault run: topics under ``prefix`` (3 partitions, no time-based
    retention so that events stamped weeks ago stay), one stream worker, the five sinks."""

    kafka: KafkaConnection
    prefix: str
    tmp: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)  # more settings for every service
    #: replay recorded history: the raw topic keeps the producers' CreateTime (each message
    #: stamped with when its station sent it) and the worker is told so
    create_time: bool = False
    #: the services in development mode (development key registry and pseudonym key); a run
    #: that is not gives its trust anchors in ``env``
    development: bool = True
    #: supervised restarts of a service that exits on its own (see ``Pipeline.restarts``)
    restarts: int = 0
    pipeline: Pipeline = field(init=False)
    publisher: Publisher = field(init=False)

    def __post_init__(self) -> None:
        specs = [
            dataclasses.replace(s, retention_ms=-1) if s.cleanup_policy == "delete" else s
            for s in topic_specs(self.prefix, PARTITIONS, record_topics="single")
        ]
        if self.create_time:
            specs = replay_specs(specs, self.prefix)
        apply_topics(self.kafka, specs)
        self.pipeline = Pipeline(
            kafka=self.kafka,
            prefix=self.prefix,
            store_root=self.tmp / "store",
            log_dir=self.tmp / "logs",
            home=self.home,
            workers=1,
            worker_args=(
                "--session-timeout",
                "6",
                "--batch-size",
                "250",
                "--log-level",
                os.environ.get("TUYEN_FAULT_LOG_LEVEL", "WARNING"),
                *(["--allow-create-time"] if self.create_time else []),
            ),
            sink_args=("--flush-interval", "1"),
            extra_env={
                "TUYEN_TOPIC_PARTITIONS": str(PARTITIONS),
                # not inherited from the tests' own TUYEN_DEV=1 when the run is not in it
                "TUYEN_DEV": "1" if self.development else "0",
                **self.env,
            },
            development=self.development,
            restarts=self.restarts,
        )
        self.publisher = Publisher(self.kafka, topic_name(RAW, self.prefix), PARTITIONS)

    @property
    def store_root(self) -> Path:
        return self.tmp / "store"

    @property
    def pseudonymiser(self) -> Pseudonymiser:
        """The run's pseudonym key (the worker's), as the stream worker uses it."""
        key = self.env.get("TUYEN_PSEUDONYM_KEY", DEV_PSEUDONYM_KEY)
        return Pseudonymiser(decode_pseudonym_key(key, allow_development=self.development))

    def national_event_id(self, event_id: str) -> str:
        """The national tier's keyed hash of ``event_id`` (``streams.national``)."""
        return national_event_id(event_id, self.pseudonymiser)

    @property
    def streams_group(self) -> str:
        return next(iter(self.pipeline.groups()))

    def start(self) -> None:
        self.pipeline.start()

    def stop(self) -> None:
        self.pipeline.stop()
        self.publisher.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {s.name} ---\n{s.log_tail(40)}" for s in self.pipeline.services.values()
        )

    def remaining(self) -> dict[str, int] | None:
        """Lag per group, or None while the broker cannot answer (starting, restarting)."""
        try:
            return unless_transient(self.pipeline.remaining)
        except TimeoutError:
            return None

    def wait_streams_mid_batch(self, published: int, timeout_s: float = 90.0) -> int:
        """Wait until the stream group has committed some but not all of ``published``;
        returns how many it had committed."""

        def some_not_all() -> int | None:
            self.pipeline.check_alive()
            rem = self.remaining()
            if rem is None:
                return None
            left = rem[self.streams_group]
            return published - left if 0 < left < published else None

        return wait_until(
            some_not_all,
            timeout=timeout_s,
            interval=0.1,
            message=lambda: "mid-stream\n" + self.logs(),
        )

    def publish_until_sinks_mid_stream(
        self, items: Sequence[Outgoing], chunks: int = 8, timeout_s: float = 90.0
    ) -> tuple[dict[str, int], int]:
        """Publish ``items`` a chunk at a time until the tier sinks are seen mid-stream
        (:meth:`wait_sinks_mid_stream`); what it returned and how many were published. One
        burst can be committed by every sink within one flush, between two looks (a busy
        machine stretches the looks): each further chunk opens another window."""
        deadline = time.monotonic() + timeout_s
        step = max(1, -(-len(items) // chunks))
        sent = 0
        while sent < len(items):
            part = items[sent : sent + step]
            self.publisher.send(part)
            self.publisher.flush()
            sent += len(part)
            last = sent >= len(items)
            wait_s = deadline - time.monotonic() if last else min(5.0, deadline - time.monotonic())
            try:
                return self.wait_sinks_mid_stream(max(1.0, wait_s)), sent
            except ConditionTimeout:
                if last:
                    raise
        raise AssertionError("no traffic to publish")

    def wait_sinks_mid_stream(self, timeout_s: float = 90.0) -> dict[str, int]:
        """Wait until the tier sinks have committed some of their input but not all of it;
        returns the committed count per tier sink at that moment."""
        groups = {
            g: topics[0]
            for g, topics in self.pipeline.groups().items()
            if any(g.endswith(f"-sink-{t}") for t in TIERS)
        }

        def mid() -> dict[str, int] | None:
            self.pipeline.check_alive()
            rem = self.remaining()
            if rem is None:
                return None
            ends = unless_transient(lambda: topic_ends(self.kafka, list(groups.values())))
            if ends is None:
                return None
            done = {g: ends[t] - rem[g] for g, t in groups.items()}
            if any(done.values()) and any(rem[g] for g in groups):
                return done
            return None

        return wait_until(
            mid, timeout=timeout_s, interval=0.1, message=lambda: "sinks mid-stream\n" + self.logs()
        )

    def log_size(self, service: str) -> int:
        path = self.pipeline.services[service].log_path
        return path.stat().st_size if path.exists() else 0

    def dead_threads(self, service: str, since: int = 0) -> list[str]:
        """Threads of ``service`` that died of an exception (logged after byte ``since``)."""
        path = self.pipeline.services[service].log_path
        with path.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if line.startswith("Exception in thread ")]

    def wait_lag_zero_or_dead_sink(self, since: int, timeout_s: float = 150.0) -> list[str]:
        """Wait until every group is at its end, or a sink thread died (its process lives
        on, so the lag would never move again); returns the dead threads' lines."""

        def done() -> list[str] | bool:
            self.pipeline.check_alive()
            dead = self.dead_threads("sinks", since)
            if dead:
                return dead
            rem = self.remaining()
            return rem is not None and not any(rem.values())

        found = wait_until(done, timeout=timeout_s, interval=0.5, message=lambda: self.logs())
        return found if isinstance(found, list) else []

    def publish_until_outputs_in_flight(
        self, exp: Expectation, items: Sequence[Outgoing], *, chunk: int = 100
    ) -> tuple[dict[str, int], int]:
        """Publish ``items`` a chunk at a time until the stream worker has produced tier
        records *and* dead letters for raw input it has not committed yet, and leave it frozen
        (SIGSTOP) in that state so that the caller's SIGKILL forces it to process that input
        again. Returns the counts and how many of ``items`` were published.

        Why so: a backlog arrives in full batches, and the worker commits a full batch as soon
        as the next message comes in, so its outputs are uncommitted for milliseconds (under
        load a look could miss every window: a flaky test). A chunk smaller than a batch is
        committed only at the worker's next commit tick, up to a second after its outputs are
        out; each chunk is published once the previous one is committed. Every look freezes
        the worker first and reads through one long-lived probe, so looking takes no time the
        worker could commit in."""
        worker = self.pipeline.services["worker-1"]
        district = topic_name(TIER_DISTRICT, self.prefix)
        dlq = topic_name(DLQ, self.prefix)
        raw = topic_name(RAW, self.prefix)
        probe = _Probe(self.kafka, self.streams_group, raw, [district, dlq])
        deadline = time.monotonic() + 120.0
        sent = 0

        def look() -> dict[str, int] | str | None:
            self.pipeline.check_alive()
            assert worker.proc is not None
            os.killpg(worker.proc.pid, signal.SIGSTOP)  # nothing moves while we look
            found = unless_transient(lambda: (probe.ends(), probe.committed()))
            if found is None:
                os.killpg(worker.proc.pid, signal.SIGCONT)
                return None
            ends, committed = found
            done = [lbl for (p, o), lbl in self.publisher.coords.items() if o < committed[p]]
            bad_done = sum(1 for lbl in done if lbl in exp.bad)
            valid_done = len(done) - bad_done
            if valid_done and ends[district] > valid_done and ends[dlq] > bad_done:
                return {  # left frozen
                    "raw_committed": len(done),
                    "tier_out": ends[district],
                    "tier_out_uncommitted": ends[district] - valid_done,
                    "dlq_out_uncommitted": ends[dlq] - bad_done,
                }
            os.killpg(worker.proc.pid, signal.SIGCONT)
            return "committed" if len(done) == len(self.publisher.coords) else None

        try:
            while sent < len(items):
                part = items[sent : sent + chunk]
                self.publisher.send(part)
                self.publisher.flush()
                sent += len(part)
                seen = wait_until(
                    look,
                    timeout=max(1.0, deadline - time.monotonic()),
                    interval=0.05,
                    message=lambda: "in flight or committed\n" + self.logs(),
                )
                if isinstance(seen, dict):
                    return seen, sent
        finally:
            probe.close()
        raise AssertionError(f"no outputs in flight over {sent} events\n{self.logs()}")

    def wait_caught_up(self, timeout_s: float = 150.0) -> float:
        """Wait until every group is at the end (retrying while the broker is loading);
        returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            try:
                self.pipeline.wait_caught_up(max(1.0, deadline - time.monotonic()), settle_s=2.0)
                break
            except (KafkaException, TimeoutError) as exc:
                if isinstance(exc, KafkaException) and not transient(exc):
                    raise
                if time.monotonic() > deadline:
                    raise AssertionError(f"not caught up: {exc}\n{self.logs()}") from exc
                logger.info("broker not ready for lag queries: %s", exc)
        return time.monotonic() - started


def start_run(
    kafka: KafkaConnection,
    factory: pytest.TempPathFactory,
    name: str,
    env: dict[str, str] | None = None,
    *,
    create_time: bool = False,
    development: bool = True,
    restarts: int = 0,
) -> FaultPipeline:
    """A pipeline on fresh topics (``<name>-<random>.`` prefix) and a fresh temp folder;
    ``env``: more settings for its services; ``create_time``, ``development``, ``restarts``:
    see :class:`FaultPipeline`."""
    tmp = factory.mktemp(name)
    return FaultPipeline(
        kafka,
        unique_name(name) + ".",
        tmp / "run",
        tmp / "home",
        env or {},
        create_time,
        development,
        restarts,
    )


def kill_and_restart(
    fp: FaultPipeline,
    service: str,
    before: Sequence[Outgoing],
    during: Sequence[Outgoing],
    after: Sequence[Outgoing],
    at_fault: Callable[[Sequence[Outgoing]], tuple[T, int]],
) -> tuple[T, int, float]:
    """A kill run of one service: start the pipeline, ``at_fault(before)`` (publishes some or
    all of ``before`` and waits for the moment to kill at; returns what it measured and how
    many it published), SIGKILL ``service``, publish the rest of ``before`` and ``during``
    while it is down, restart it, publish ``after`` and wait until every group is at its end.
    Returns what ``at_fault`` measured, how many events were published before the kill and
    the seconds from the kill to the end."""
    fp.start()
    at_kill, sent = at_fault(before)
    victim = fp.pipeline.services[service]
    victim.kill()
    killed_at = time.monotonic()
    fp.publisher.send([*before[sent:], *during])
    fp.publisher.flush()
    victim.start()
    fp.publisher.send(after)
    fp.publisher.flush()
    fp.wait_caught_up()
    return at_kill, sent, time.monotonic() - killed_at


class _Probe:
    """One consumer (the group's id, never joining it) for end and committed offsets."""

    def __init__(self, kafka: KafkaConnection, group: str, raw: str, ends: Sequence[str]) -> None:
        self.client = consumer(kafka, {"group.id": group, "enable.auto.commit": False})
        md = self.client.list_topics(timeout=10)
        self.raw = [TopicPartition(raw, p) for p in sorted(md.topics[raw].partitions)]
        self.outputs = {t: [TopicPartition(t, p) for p in md.topics[t].partitions] for t in ends}

    def ends(self) -> dict[str, int]:
        """Sum of end offsets per output topic."""
        get = self.client.get_watermark_offsets
        return {
            t: sum(get(tp, timeout=10, cached=False)[1] for tp in tps)
            for t, tps in self.outputs.items()
        }

    def committed(self) -> dict[int, int]:
        """The group's committed offsets on the raw topic (partition → offset; -1: none)."""
        return {tp.partition: max(tp.offset, -1) for tp in self.client.committed(self.raw, 10)}

    def close(self) -> None:
        self.client.close()
