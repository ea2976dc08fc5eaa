"""The agents' batch handling and the runtime without faust: a real :class:`StreamsRuntime`
(its own processor and counters), a fake consumer and a fake producer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas import KafkaMessage, encode
from streams.agents import CountAgent, ValidateAgent
from streams.checkpoint import Checkpoint, StateChanges
from streams.config import StreamsConfig
from streams.exceptions import OutputError
from streams.offsets import GuardedInput
from streams.pseudonym_key import DEV_PSEUDONYM_KEY
from streams.runtime import StreamsRuntime
from streams.state import MemoryState
from streams.validate import RawMessage
from tests.data.bad_inputs import EventFactory
from tests.unit.streams.test_checkpoint import FakeProducer
from tests.unit.streams.test_guarded_input import FakeConsumer
from tests.unit.streams.test_validate import raw

RAW = "t.station.changes"
Delta = tuple[int, int, dict[str, Any]]  # (partition, offset, delta message)


def _runtime(**overrides: Any) -> StreamsRuntime:
    config = StreamsConfig.model_validate(
        {
            "kafka": {"bootstrap": "unused:9092"},
            "development": True,
            "pseudonym_key": DEV_PSEUDONYM_KEY,
            "verify_processes": 0,
            "topic_prefix": "t.",
            **overrides,
        }
    )
    return StreamsRuntime(config)


def _consumed(msgs: Sequence[KafkaMessage]) -> list[RawMessage]:
    """As a consumer gets them: on their murmur2 partitions, offsets from 0 in each."""
    next_offset: dict[int, int] = {}
    out = []
    for m in raw(msgs):
        offset = next_offset[m.partition] = next_offset.get(m.partition, -1) + 1
        out.append(replace(m, offset=offset))
    return out


def _coordinates(m: RawMessage) -> tuple[int, int]:
    return m.partition, m.offset


class Acks:
    def __init__(self) -> None:
        self.acked: list[Any] = []

    async def __call__(self, events: Sequence[Any]) -> None:
        self.acked += events


def _validate_agent(
    runtime: StreamsRuntime,
    consumer: FakeConsumer,
    *,
    overlap: bool = False,
    run: Any = None,
) -> tuple[ValidateAgent[RawMessage], FakeProducer, Acks, list[StateChanges]]:
    producer, acks = FakeProducer([]), Acks()
    written: list[StateChanges] = []
    checkpoint: Checkpoint[RawMessage] = Checkpoint(
        producer,
        changelog="records-changelog",
        write_state=written.append,
        ack=acks,
        deltas_topic=runtime.config.deltas_topic,
        dead_letters=runtime.processor.refused,
        stats=runtime.stats,
        **({"run": run} if run is not None else {}),
    )
    source = GuardedInput(RAW, consumer, _coordinates)
    agent = ValidateAgent(runtime, source, checkpoint, list, overlap=overlap)
    return agent, producer, acks, written


class Flushes:
    """The checkpoint's ``run`` (steps 1 and 2 off the event loop): each waits until the test
    lets it go (``release``); ``fail``: the next one raises instead."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.gate = asyncio.Event()
        self.fail = False

    async def __call__(self, work: Any) -> None:
        self.log.append("publish waits")
        await self.gate.wait()
        self.gate.clear()
        if self.fail:
            raise OutputError("injected: the broker went away")
        work()
        self.log.append("published")

    def release(self) -> None:
        self.gate.set()


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "step-1-fails"])
def test_overlapped_the_next_batch_is_processed_while_the_last_one_publishes(fail: bool) -> None:
    """Batch 2 is admitted and processed (its correction judged against batch 1's state)
    while batch 1's flush waits; its checkpoint begins only after batch 1's ack. When batch
    1's checkpoint fails, handling batch 2 raises: batch 2 is never published nor acked."""
    runtime = _runtime()
    f = EventFactory()
    first = f.change("encounter")
    kwargs = {"station": first.station, "health_id": first.key, "record_id": first.record_id}
    data = {**(first.data or {}), "encounter_type": "inpatient"}
    second = f.change("encounter", version=2, data=data, **kwargs)  # type: ignore[arg-type]
    # batch 2: the correction, then batch 1's event again (a duplicate, by batch 1's state)
    b1, b2 = _consumed([encode(first)]), _consumed([encode(c) for c in (first, second, first)])[1:]
    log: list[str] = []
    flushes = Flushes(log)
    process = runtime.process
    processed = asyncio.Event()

    async def logged(msgs: Sequence[RawMessage], now: datetime) -> Any:
        result = await process(msgs, now)
        log.append(f"processed {len(msgs)}")
        processed.set()
        return result

    runtime.process = logged  # type: ignore[method-assign]
    try:
        agent, producer, acks, _written = _validate_agent(
            runtime, FakeConsumer(), overlap=True, run=flushes
        )
        failures: list[BaseException] = []
        agent.checkpoint.on_failure = failures.append

        async def life() -> None:
            assert await agent.handle(b1) == 1
            assert acks.acked == [] and runtime.stats["accepted"] == 0  # begun, not done
            processed.clear()
            second_batch = asyncio.create_task(agent.handle(b2))
            await asyncio.wait_for(processed.wait(), 10.0)
            assert log == ["processed 1", "publish waits", "processed 2"]
            flushes.fail = fail
            flushes.release()  # batch 1's flush
            if fail:
                with pytest.raises(OutputError):
                    await second_batch
                assert len(failures) == 1
                return
            assert await second_batch == 2
            assert acks.acked == b1  # batch 2's checkpoint begun after batch 1's ack
            flushes.release()
            await agent.settle()

        asyncio.run(life())
        if fail:
            assert acks.acked == [] and not producer.topics and not runtime.stats
            return
        assert log[3:] == ["published", "publish waits", "published"]
        assert acks.acked == [*b1, *b2]
        assert dict(runtime.stats) == {"accepted": 2, "duplicates": 1}
        assert len(producer.topics["t.tier.national"]) == 2
    finally:
        runtime.close()


def test_the_runtime_builds_its_processor_and_counters_over_the_stores_it_is_given() -> None:
    state, counters = MemoryState(), {"x|2025-10|e": ["station", 1]}
    runtime = _runtime()
    try:
        assert isinstance(runtime.processor.state, MemoryState)
        assert runtime.processor.topics["national"] == "t.tier.national"
        assert runtime.counters.values() == {}
    finally:
        runtime.close()
    given = StreamsRuntime(runtime.config, state=state, counters=counters)
    try:
        assert given.processor.state is state and given.counters.data is counters
        assert given.publisher is None  # built on first use: nothing connects before
    finally:
        given.close()


def test_a_batch_is_processed_checkpointed_acked_and_counted() -> None:
    runtime = _runtime()
    f = EventFactory()
    good = encode(f.change("encounter"))
    bad = KafkaMessage(good.key, good.value + b"x", good.headers)  # tampered: not JSON
    msgs = _consumed([*f.valid(5), bad])
    try:
        agent, producer, acks, written = _validate_agent(runtime, FakeConsumer())
        assert asyncio.run(agent.handle(msgs)) == len(msgs)
        assert acks.acked == msgs
        topics = producer.topics
        assert len(topics["t.tier.national"]) == 5 and len(topics["t.station.changes.dlq"]) == 1
        assert len(written[0]) == 5 and topics["records-changelog"]
        assert runtime.stats["accepted"] == 5 and sum(runtime.stats.values()) == 6
        assert agent.timing["events"] == 6 and agent.timing["batches"] == 1
    finally:
        runtime.close()


def test_stage_1_inline_or_on_a_thread_gives_the_same_outputs_in_the_same_order() -> None:
    msgs = _consumed(EventFactory().valid(600))  # three chunks of 256, 256, 88
    now = datetime.now(UTC)
    outputs = []
    for threads in (0, 1):
        runtime = _runtime(verify_threads=threads)
        try:
            assert (runtime.pool is None) == (threads == 0)
            out, _finish_s = asyncio.run(runtime.process(msgs, now))
            outputs.append([(m.topic, m.key, m.value) for m in out.outputs])
            assert out.accepted == len(msgs)
        finally:
            runtime.close()
    assert outputs[0] == outputs[1]


def test_events_held_back_for_a_refetch_are_acked_but_not_processed() -> None:
    runtime = _runtime()
    msgs = _consumed(EventFactory().valid(6))
    p = msgs[0].partition
    consumer = FakeConsumer(on_broker={(RAW, p): 1})
    # a stale fetch from beyond partition p's committed offset: held back, sought back to it
    msgs = [replace(m, offset=m.offset + 2) if m.partition == p else m for m in msgs]
    try:
        agent, _producer, acks, _written = _validate_agent(runtime, consumer)
        processed = asyncio.run(agent.handle(msgs))
        assert [c for c in consumer.calls if c[0] == "seek"] == [("seek", RAW, p, 1)]
        assert processed == len([m for m in msgs if m.partition != p])
        assert acks.acked == msgs  # faust waits for every delivered event to be acked
        assert runtime.stats["accepted"] == processed
    finally:
        runtime.close()


def test_the_counting_agent_publishes_changed_counters_once() -> None:
    runtime = _runtime()
    producer, acks = FakeProducer([]), Acks()
    checkpoint: Checkpoint[Delta] = Checkpoint(
        producer, changelog="counters-changelog", write_state=lambda c: None, ack=acks
    )
    source: GuardedInput[Delta] = GuardedInput(
        runtime.config.deltas_topic, FakeConsumer(), lambda e: (e[0], e[1])
    )

    def deltas(event: Delta) -> tuple[int, Mapping[str, Any]]:
        return event[0], event[2]

    agent = CountAgent(runtime, source, checkpoint, deltas)
    message = {"sp": 4, "units": {"01": "province"}, "e": [[7, {"01|2025-10|a": 2}, 1761955200000]]}
    try:
        assert asyncio.run(agent.handle([(1, 0, message)])) == 1
        ((key, value, _p),) = producer.topics["t.aggregates.live"]
        doc = orjson.loads(value or b"")
        assert key == b"01|2025-10|a" and doc["value"] == 2 and doc["tier"] == "province"
        assert doc["event_time"] == "2025-11-01T00:00:00.000000Z"
        assert runtime.stats["aggregates.updates"] == 1
        assert {k for k, _v, _q in producer.topics["counters-changelog"]} == {
            b'"01|2025-10|a"',
            b'"__hw__|1|4"',
        }
        asyncio.run(agent.handle([(1, 1, message)]))  # the same entries again: nothing changes
        assert len(producer.topics["t.aggregates.live"]) == 1
        assert runtime.counters.values() == {"01|2025-10|a": 2}
        assert len(acks.acked) == 2
    finally:
        runtime.close()
