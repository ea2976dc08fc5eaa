"""Fault-injection harness: a whole pipeline (workers + sinks as processes) on its own topic
prefix, a publisher that remembers where every message landed, and the oracle that checks
the final stores against what was published.

What a run checks (:func:`check_stores`), per tier store (district, province, national):

- every valid event is in ``<rt>_changes`` exactly once and nothing else is (by event id;
  the national store is pseudonymised, so event ids are the only common key);
- the current state (``<rt>`` views) equals the oracle: the latest valid change per record
  (record_version, then event_time, then event_id, as the views order), deletes removed —
  compared by (record type, record id, event id) on district/province, by event id on national;
- physical duplicates: the ``raw`` schema (every Parquet row on disk, not deduplicated)
  holds each event id once per tier — the views deduplicate by construction, so only the raw
  rows show whether the at-least-once stages really produced effectively-once files;
- the DLQ: every bad input, identified by its raw-topic coordinates (partition, offset from
  the delivery report), is there with its expected reason, once (in ``raw.dlq`` and in the
  ``dlq`` view), and nothing else is;
- lag: every consumer group of the pipeline is at the end of its input.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from deploy.pipeline import Pipeline, topic_ends
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.simulator import SimEvent, SimulationResult, simulate
from producers.writers import fast_producer_config
from schemas import KafkaMessage, Reason, RecordChange
from schemas.registry import RecordType
from schemas.topics import DLQ, RAW, TIER_DISTRICT, topic_name, topic_specs
from schemas.wire import decode
from sinks.catalog import open_catalog
from tests.helpers import unique_name, wait_until

__all__ = [
    "PARTITIONS",
    "RECORD_TYPES",
    "TIERS",
    "Expectation",
    "FaultPipeline",
    "FaultResult",
    "Outgoing",
    "Publisher",
    "StoreCheck",
    "StoreContract",
    "check_stores",
    "finish",
    "from_sim",
    "kill_run_traffic",
    "phases",
    "simulated",
    "start_run",
    "write_measurement",
]

logger = logging.getLogger(__name__)

PARTITIONS = 3
TIERS = ("district", "province", "national")
RECORD_TYPES = tuple(rt.value for rt in RecordType)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: a label (the event id, or a case name for bad input without
    one), the message, its CreateTime (None: now) and the reason it must be rejected with."""

    label: str
    message: KafkaMessage
    timestamp_ms: int | None = None
    reason: Reason | None = None
    change: RecordChange | None = None


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
        latest: dict[tuple[str, str], RecordChange] = {}
        for c in self.valid.values():
            k = (c.record_type.value, c.record_id)
            cur = latest.get(k)
            if cur is None or (c.record_version, c.time, c.id) > (
                cur.record_version,
                cur.time,
                cur.id,
            ):
                latest[k] = c
        return {k: c.id for k, c in latest.items() if c.op.value != "delete"}


class Publisher:
    """Produces to the raw topic (idempotent, acks=all) and keeps every message's
    (partition, offset) from its delivery report. Survives a broker outage: messages wait in
    librdkafka's queue (message.timeout.ms 5 minutes) until the broker is back."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        cfg = fast_producer_config(bootstrap)
        cfg.update({"message.timeout.ms": 300_000, "linger.ms": 20})
        self.producer = Producer(cfg)
        self.topic = topic
        self.coords: dict[tuple[int, int], str] = {}
        self.failed: list[tuple[str, KafkaError]] = []
        self.sent = 0

    def send(self, items: Sequence[Outgoing]) -> None:
        for o in items:

            def done(err: KafkaError | None, msg: Message, label: str = o.label) -> None:
                if err is not None:
                    self.failed.append((label, err))
                else:
                    self.coords[(msg.partition() or 0, msg.offset() or 0)] = label

            kwargs: dict[str, Any] = {}
            if o.timestamp_ms is not None:
                kwargs["timestamp"] = o.timestamp_ms
            m = o.message
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


@dataclass
class FaultPipeline:
    """The pipeline of one fault run: topics under ``prefix`` (3 partitions, no time-based
    retention so that events stamped weeks ago stay), one stream worker, the five sinks."""

    bootstrap: str
    prefix: str
    tmp: Path
    home: Path
    pipeline: Pipeline = field(init=False)
    publisher: Publisher = field(init=False)

    def __post_init__(self) -> None:
        specs = [
            dataclasses.replace(s, retention_ms=-1) if s.cleanup_policy == "delete" else s
            for s in topic_specs(self.prefix, PARTITIONS)
        ]
        apply_topics(self.bootstrap, specs)
        self.pipeline = Pipeline(
            bootstrap=self.bootstrap,
            prefix=self.prefix,
            store_root=self.tmp / "store",
            log_dir=self.tmp / "logs",
            home=self.home,
            workers=1,
            worker_args=("--session-timeout", "6", "--batch-size", "250", "--log-level", "WARNING"),
            sink_args=("--flush-interval", "1"),
            extra_env={
                "TUYEN_TOPIC_PARTITIONS": str(PARTITIONS),
                "TUYEN_PSEUDONYM_KEY": "fault-tests-pseudonym-key",
            },
        )
        self.publisher = Publisher(self.bootstrap, topic_name(RAW, self.prefix))

    @property
    def store_root(self) -> Path:
        return self.tmp / "store"

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
            return self.pipeline.remaining()
        except TimeoutError:
            return None
        except KafkaException as exc:
            if transient(exc):
                return None
            raise

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
            try:
                ends = topic_ends(self.bootstrap, list(groups.values()))
            except KafkaException as exc:
                if transient(exc):
                    return None
                raise
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

    def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        """The offsets ``group`` committed on ``topic`` (partition → offset; -1: none)."""
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            return {tp.partition: max(tp.offset, -1) for tp in consumer.committed(tps, timeout=10)}
        finally:
            consumer.close()

    def wait_outputs_in_flight(self, exp: Expectation, timeout_s: float = 90.0) -> dict[str, int]:
        """Wait until the stream worker has produced tier records *and* dead letters for raw
        input it has not committed yet, and leave it frozen (SIGSTOP) in that state so that
        the caller's SIGKILL forces it to process that input again. Returns the counts."""
        raw = topic_name(RAW, self.prefix)
        district = topic_name(TIER_DISTRICT, self.prefix)
        dlq = topic_name(DLQ, self.prefix)
        worker = self.pipeline.services["worker-1"]

        def measure() -> dict[str, int] | None:
            try:  # the ends before the commits: an output counted was produced by then
                ends = topic_ends(self.bootstrap, [district, dlq])
                committed = self.committed_offsets(self.streams_group, raw)
            except KafkaException as exc:
                if transient(exc):
                    return None
                raise
            done = [lbl for (p, o), lbl in self.publisher.coords.items() if o < committed[p]]
            bad_done = sum(1 for lbl in done if lbl in exp.bad)
            valid_done = len(done) - bad_done
            if valid_done and ends[district] > valid_done and ends[dlq] > bad_done:
                return {
                    "raw_committed": len(done),
                    "tier_out": ends[district],
                    "tier_out_uncommitted": ends[district] - valid_done,
                    "dlq_out_uncommitted": ends[dlq] - bad_done,
                }
            return None

        def in_flight() -> dict[str, int] | None:
            self.pipeline.check_alive()
            if measure() is None:
                return None
            assert worker.proc is not None
            os.killpg(worker.proc.pid, signal.SIGSTOP)  # nothing moves while we look again
            again = measure()
            if again is None:
                os.killpg(worker.proc.pid, signal.SIGCONT)
            return again

        return wait_until(
            in_flight, timeout=timeout_s, interval=0.05, message=lambda: "in flight\n" + self.logs()
        )

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


@dataclass
class StoreCheck:
    """What :func:`check_stores` found; the tests assert on its parts."""

    #: per tier: valid event ids absent from every ``<rt>_changes`` view
    missing: dict[str, list[str]] = field(default_factory=dict)
    #: per tier: event ids in the changes views that were not published as valid
    extra: dict[str, list[str]] = field(default_factory=dict)
    #: per tier: rows of the deduplicated views beyond one per event / one per record
    view_duplicates: dict[str, int] = field(default_factory=dict)
    #: per tier: current-state rows differing from the oracle (symmetric difference)
    state_diff: dict[str, list[Any]] = field(default_factory=dict)
    #: per tier: Parquet rows on disk (schema ``raw``) holding an event id already seen
    raw_duplicates: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    raw_rows: dict[str, int] = field(default_factory=dict)
    #: label → (reason in the DLQ, expected reason) where they differ (None: absent)
    dlq_wrong: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: dead letters of other topics (a sink rejecting a tier record)
    dlq_foreign: list[Any] = field(default_factory=list)
    dlq_rows: int = 0
    #: the same dead letter (its DLQ topic coordinates) stored twice on disk
    dlq_raw_duplicates: int = 0
    #: one bad input (raw-topic coordinates) dead-lettered more than once: distinct dead
    #: letters, so the ``dlq`` view (deduplicated on the dead letter's own coordinates)
    #: shows it twice
    dlq_view_duplicates: int = 0
    temp_files: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "current": self.current,
            "raw_rows": self.raw_rows,
            "raw_duplicates": self.raw_duplicates,
            "missing": {t: len(v) for t, v in self.missing.items()},
            "state_diff": {t: len(v) for t, v in self.state_diff.items()},
            "dlq_rows": self.dlq_rows,
            "dlq_wrong": len(self.dlq_wrong),
            "dlq_raw_duplicates": self.dlq_raw_duplicates,
            "dlq_view_duplicates": self.dlq_view_duplicates,
            "temp_files": self.temp_files,
        }


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _union(view: Callable[[str], str], cols: str) -> str:
    """``cols`` of one view per record type (``view(rt)`` names it), with the type first."""
    return " UNION ALL ".join(f"SELECT '{rt}' AS rt, {cols} FROM {view(rt)}" for rt in RECORD_TYPES)


def check_stores(
    root: Path,
    exp: Expectation,
    coords: dict[tuple[int, int], str],
    raw_topic: str,
) -> StoreCheck:
    """Compare the stores under ``root`` with ``exp`` (see the module doc); ``coords`` maps
    raw-topic (partition, offset) to the published label."""
    valid_ids = set(exp.valid)
    current = exp.current()
    out = StoreCheck()
    for tier in TIERS:
        con = open_catalog(root, tier)
        try:
            changes = _rows(con, _union(lambda rt: f'"{rt}_changes"', "event_id"))
            got_ids = Counter(eid for _rt, eid in changes)
            out.missing[tier] = sorted(valid_ids - set(got_ids))
            out.extra[tier] = sorted(set(got_ids) - valid_ids)
            state = _rows(con, _union(lambda rt: f'"{rt}"', "record_id, event_id"))
            dups = sum(n - 1 for n in got_ids.values())
            if tier == "national":  # pseudonymised record ids: compare the event ids
                got_state = Counter(eid for _rt, _rid, eid in state)
                want = Counter(current.values())
                out.state_diff[tier] = sorted(((got_state - want) + (want - got_state)).keys())
            else:
                by_record = Counter((rt, rid) for rt, rid, _eid in state)
                dups += sum(n - 1 for n in by_record.values())
                pairs = {((rt, rid), eid) for rt, rid, eid in state}
                out.state_diff[tier] = sorted(pairs ^ set(current.items()))
            out.view_duplicates[tier] = dups
            raw = _rows(
                con,
                "SELECT count(*), count(DISTINCT event_id) FROM ("
                + _union(lambda rt: f'raw."{rt}"', "event_id")
                + ")",
            )[0]
            out.changes[tier] = len(changes)
            out.current[tier] = len(state)
            out.raw_rows[tier] = int(raw[0])
            out.raw_duplicates[tier] = int(raw[0]) - int(raw[1])
        finally:
            con.close()
    con = open_catalog(root, "national")
    try:
        dlq = _rows(con, 'SELECT topic, partition, "offset", reason FROM dlq')
        raw_dlq = _rows(
            con,
            "SELECT count(*), count(DISTINCT (dlq_topic, dlq_partition, dlq_offset)) FROM raw.dlq",
        )[0]
    finally:
        con.close()
    out.dlq_foreign = [r for r in dlq if r[0] != raw_topic]
    ours = [r for r in dlq if r[0] == raw_topic]
    by_coord = Counter((int(p), int(o)) for _t, p, o, _r in ours)
    got_r = {coords.get((int(p), int(o)), f"?{p}:{o}"): str(r) for _t, p, o, r in ours}
    want_r = {label: str(reason.value) for label, reason in exp.bad.items()}
    out.dlq_wrong = {
        k: (got_r.get(k), want_r.get(k))
        for k in set(got_r) | set(want_r)
        if got_r.get(k) != want_r.get(k)
    }
    out.dlq_rows = len(dlq)
    out.dlq_view_duplicates = sum(n - 1 for n in by_coord.values())
    out.dlq_raw_duplicates = int(raw_dlq[0]) - int(raw_dlq[1])
    out.temp_files = sum(1 for _ in root.rglob("*.tmp"))
    return out


@dataclass
class FaultResult:
    """One fault run: what the stores hold, the lag after recovery, what was measured."""

    check: StoreCheck
    lag: dict[str, int] | None
    measured: dict[str, Any]


class StoreContract:
    """The assertions every fault run must pass (a test class per fault inherits them and
    provides a ``result`` fixture that runs the fault once)."""

    def test_no_valid_event_missing_from_any_tier_store(self, result: FaultResult) -> None:
        c = result.check
        assert {t: v[:3] for t, v in c.missing.items() if v} == {}
        assert {t: v[:3] for t, v in c.extra.items() if v} == {}

    def test_current_state_of_every_tier_store_matches_what_was_published(
        self, result: FaultResult
    ) -> None:
        diff = {t: v[:3] for t, v in result.check.state_diff.items() if v}
        assert diff == {}

    def test_no_duplicate_row_in_the_deduplicated_views(self, result: FaultResult) -> None:
        assert result.check.view_duplicates == dict.fromkeys(TIERS, 0)

    def test_each_bad_input_once_in_the_dlq_view(self, result: FaultResult) -> None:
        assert result.check.dlq_view_duplicates == 0, "a bad input shows twice in the dlq view"

    def test_no_duplicate_row_on_disk(self, result: FaultResult) -> None:
        """Physical rows (schema ``raw``): the sinks' deterministic segment files must not
        add a row twice, and a replayed upstream stage must not produce one again."""
        assert result.check.raw_duplicates == dict.fromkeys(TIERS, 0)
        assert result.check.dlq_raw_duplicates == 0
        assert result.check.temp_files == 0

    def test_every_bad_input_in_the_dlq_with_its_reason(self, result: FaultResult) -> None:
        assert dict(sorted(result.check.dlq_wrong.items())[:5]) == {}
        assert result.check.dlq_foreign == []

    def test_lag_back_to_zero(self, result: FaultResult) -> None:
        assert result.lag is not None
        assert result.lag == dict.fromkeys(result.lag, 0)


def start_run(bootstrap: str, factory: pytest.TempPathFactory, name: str) -> FaultPipeline:
    """A pipeline on fresh topics (``<name>-<random>.`` prefix) and a fresh temp folder."""
    tmp = factory.mktemp(name)
    return FaultPipeline(bootstrap, unique_name(name) + ".", tmp / "run", tmp / "home")


def finish(
    fp: FaultPipeline, exp: Expectation, artifacts: Path, name: str, measured: dict[str, Any]
) -> FaultResult:
    """After recovery: the lag, the store check, the measurement file."""
    lag = fp.remaining()
    check = check_stores(fp.store_root, exp, fp.publisher.coords, topic_name(RAW, fp.prefix))
    measured = {"valid": len(exp.valid), "bad": len(exp.bad), **measured, **check.summary()}
    measured["lag"] = lag
    write_measurement(artifacts, name, measured)
    return FaultResult(check, lag, measured)


def simulated(
    seed: int,
    *,
    start: date,
    days: int,
    n_stations: int = 6,
    scale: float = 0.05,
    bad_fraction: float = 0.0,
    provinces: tuple[str, ...] = ("04",),
) -> tuple[list[SimEvent], SimulationResult]:
    """Deterministic simulated traffic (no random outages: the tests inject their own)."""
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


def write_measurement(artifacts: Path, name: str, data: dict[str, Any]) -> None:
    """Keep what a run measured in ``test-artifacts/faults/<name>.json`` (and the log)."""
    folder = artifacts / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    logger.warning("fault run %s: %s", name, orjson.dumps(data).decode())
