"""The sinks' flush: a partition's new rows are written once they have waited the flush
interval since they arrived; each kind of sink has its own default interval
(sinks.config.FLUSH_INTERVAL_S: the aggregates sink's is longer) and the sink records where
its time goes (sinks.metrics.SinkHops)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition as TP

from schemas.kafka import KafkaConnection
from sinks.config import FLUSH_INTERVAL_S, FRESH_FLUSH_S, SinkKind, sink_config
from sinks.consumer import SinkRunner
from sinks.metrics import SINK_HOPS
from sinks.testing import FakeMessage, tier_record

TOPIC = "tier.province"


class FakeConsumer:
    """Hands out the queued batches, one per ``consume()`` (then nothing); records commits."""

    def __init__(self, batches: list[list[FakeMessage]]) -> None:
        self.batches = batches
        self.commits: list[list[tuple[int, int]]] = []

        self.timeouts: list[float] = []

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.timeouts.append(timeout)
        return self.batches.pop(0) if self.batches else []

    def commit(self, *, offsets: list[TP], asynchronous: bool) -> None:
        self.commits.append([(o.partition, o.offset) for o in offsets])

    def close(self) -> None:
        pass


def _runner(
    tmp_path: Path, batches: list[list[FakeMessage]], flush_interval_s: float | None = None
) -> SinkRunner:
    cfg = sink_config(
        "province",
        kafka=KafkaConnection(bootstrap="127.0.0.1:1"),
        store_root=str(tmp_path),
        topic=TOPIC,
        group="g",
        flush_interval_s=flush_interval_s,
    )
    runner = SinkRunner(cfg)
    runner.consumer.close()
    runner.consumer = FakeConsumer(batches)  # type: ignore[assignment]
    return runner


def _messages(n: int, *, age_s: float, start: int = 0) -> list[FakeMessage]:
    stamp = int((time.time() - age_s) * 1000)
    return [
        dataclasses.replace(
            FakeMessage.of(TOPIC, 0, start + i, tier_record("encounter", n=i, event_id=f"e{i}")),
            _timestamp_ms=stamp,
        )
        for i in range(n)
    ]


def _committed(runner: SinkRunner) -> list[list[tuple[int, int]]]:
    return runner.consumer.commits  # type: ignore[attr-defined]


def test_hops_are_recorded_per_batch(tmp_path: Path) -> None:
    runner = _runner(tmp_path, [_messages(4, age_s=2)])
    runner.step()
    runner.writer.flush_due(force=True)
    runner.step()
    summary = runner.hops.summary()
    assert summary.startswith("batches=1 ")
    assert all(f"{hop}_p95=" in summary for hop in SINK_HOPS)
    consumed = runner.hops.samples["consumed"][0]
    assert 1.5 < consumed < 60  # its topic timestamp was 2 s before consume() returned it


def test_each_kind_has_its_own_default_interval_and_an_explicit_one_wins(tmp_path: Path) -> None:
    kafka = KafkaConnection(bootstrap="127.0.0.1:1")
    kinds: tuple[tuple[str, SinkKind], ...] = (("province", "tier"), ("aggregates", "aggregates"))
    for name, kind in kinds:
        cfg = sink_config(name, kafka=kafka, store_root=str(tmp_path))
        assert cfg.flush_after_s == FLUSH_INTERVAL_S[kind]
        assert sink_config(
            name, kafka=kafka, store_root=str(tmp_path), flush_interval_s=7.5
        ).flush_after_s == (7.5)


def test_rows_wait_for_the_interval_since_they_arrived_even_when_input_stops(
    tmp_path: Path,
) -> None:
    runner = _runner(tmp_path, [_messages(3, age_s=30)], flush_interval_s=60.0)
    runner.step()
    runner.step()  # consume() returned nothing: still within the interval since arrival
    assert _committed(runner) == [] and not list(tmp_path.rglob("*.parquet"))
    runner.writer.flush_due(force=True)
    runner.step()
    assert _committed(runner) == [[(0, 3)]]


def test_consume_waits_no_longer_than_until_the_next_flush_is_due(tmp_path: Path) -> None:
    runner = _runner(tmp_path, [_messages(3, age_s=0)], flush_interval_s=60.0)
    runner.writer.fresh_flush_s = None  # the interval only (a trickle: below)
    clock = [1000.0]
    runner.writer.clock = lambda: clock[0]
    timeouts = runner.consumer.timeouts  # type: ignore[attr-defined]
    assert runner.writer.due_in() is None
    runner.step()  # nothing waited: the poll timeout
    assert timeouts == [runner.config.poll_timeout_s]
    assert runner.writer.due_in() == 60.0  # the rows arrived at 1000 (the fake clock)
    runner.step()
    assert timeouts[-1] == runner.config.poll_timeout_s  # due in 60 s: the poll timeout
    clock[0] += 59.97
    runner.step()
    assert 0.02 < timeouts[-1] < 0.04  # consume() returns when the flush is due
    assert _committed(runner) == []
    clock[0] += 0.03
    assert runner.writer.due_in() == 0.0
    runner.step()  # due now: the shortest wait, then the flush
    assert 0 < timeouts[-1] < 0.01
    assert _committed(runner) == [[(0, 3)]] and runner.writer.due_in() is not None
    assert runner.writer.due_in() == pytest.approx(300 - 60)  # the close by age is next


def test_a_trickle_is_flushed_sooner_and_many_rows_wait_for_the_interval(tmp_path: Path) -> None:
    cfg_default = sink_config(
        "province", kafka=KafkaConnection(bootstrap="127.0.0.1:1"), store_root=str(tmp_path)
    )
    assert cfg_default.fresh_after_s is FRESH_FLUSH_S["tier"] is None  # off by default
    assert cfg_default.model_copy(update={"fresh_flush_s": 0.25}).fresh_after_s == 0.25
    assert cfg_default.model_copy(update={"fresh_flush_s": 0}).fresh_after_s is None
    explicit = cfg_default.model_copy(update={"flush_interval_s": 10.0})
    assert explicit.fresh_after_s is None  # an explicit interval is the operator's choice
    assert explicit.model_copy(update={"fresh_flush_s": 0.5}).fresh_after_s == 0.5
    assert FRESH_FLUSH_S["aggregates"] is None
    few, many = _messages(3, age_s=0), _messages(200, age_s=0, start=3)
    runner = _runner(tmp_path, [few, [], many, []], flush_interval_s=2.0)
    w = runner.writer
    w.fresh_flush_s, w.fresh_flush_rows = 0.25, 128
    clock = [1000.0]
    w.clock = lambda: clock[0]
    runner.step()  # 3 rows: a trickle
    assert w.due_in() == pytest.approx(0.25)
    clock[0] += 0.25
    runner.step()
    assert _committed(runner) == [[(0, 3)]]
    runner.step()  # 200 rows at once: not a trickle, they wait for the interval
    assert w.due_in() == pytest.approx(2.0)
    clock[0] += 1.0
    runner.step()
    assert _committed(runner) == [[(0, 3)]]
    clock[0] += 1.0
    runner.step()
    assert _committed(runner)[-1] == [(0, 203)]
