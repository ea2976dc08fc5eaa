"""``faustio.batches`` (``streams.faustbatch.take_batches``) against faust's own ``noack_take``
on faust's real objects: an app (not started: no broker), its ``Conductor`` delivering each
message through the handler it compiles for the partition (flow control, refcounts, the
stream buffer's pressure callbacks), the aiokafka driver's ``Consumer`` (its message
conversion, tracking, acks and commit arithmetic) and the agent's ``Stream``. Every scenario
runs on both takers and must give the same batches, the same acks, the same committed offsets
(faust's ``_filter_committable_offsets``, as its commit computes them) and nothing left
unacked: full and partial batches, bursts, a buffer under pressure, a stopped flow, a
rebalance while a batch is being processed, an actor cancelled."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.types import TP

from schemas.kafka import KafkaConnection, faust_broker_urls, faust_credentials
from streams import faustbatch, faustio
from streams.exceptions import OutputError

TOPIC = "raw"
_apps = itertools.count()
#: nothing listens there: the app is never started
_NOWHERE = KafkaConnection(bootstrap="127.0.0.1:1")


def _app(**settings: Any) -> faust.App:
    """A faust app that is never started (a unique id; no broker is contacted)."""
    return faust.App(
        f"fast-take-{next(_apps)}",
        broker=faust_broker_urls(_NOWHERE),
        broker_credentials=faust_credentials(_NOWHERE),
        **settings,
    )


class Counting(faust.Sensor):
    """Counts the sensor calls a stream makes (faust's Monitor joins only a started app)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages_in = self.events_in = self.events_out = self.messages_out = 0

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.messages_in += 1

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> None:
        self.events_in += 1

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        self.events_out += 1

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        self.messages_out += 1


class Rig:
    """A faust app's conductor, consumer and stream for one input topic, and an agent's
    loop over ``faustio.batches`` (``fast``: the fast taker, else faust's ``noack_take``)."""

    def __init__(
        self, *, fast: bool, partitions: int = 3, maxsize: int = 8192, size: int = 2000
    ) -> None:
        self.fast, self.partitions, self.size = fast, partitions, size
        self.app = _app(
            store="memory://",
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            stream_buffer_maxsize=maxsize,
        )
        self.topic = self.app.topic(
            TOPIC,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )
        self.sensor = Counting()
        self.app.sensors.add(self.sensor)
        self.batches: list[list[tuple[int, int]]] = []
        self.commits: list[dict[int, int]] = []
        self._it: Any = None

    async def start(self, within_s: float) -> None:
        app = self.app
        self.stream: Any = app.stream(self.topic)
        self.conductor: Any = cast(Any, app.topics)
        await self.conductor._update_indices()
        await self.assign()
        self.consumer: Any = app.consumer
        self.ack = faustio.acker(self.stream)
        self.within_s = within_s
        self._it = (  # the worker's batches, or faust's take as the reference
            faustio.batches(self.stream, self.size, within_s)
            if self.fast
            else cast(Any, self.stream).noack_take(self.size, within=within_s)
        )

    async def assign(self) -> None:
        """An assignment of every partition, as faust's rebalance ends: a new generation, the
        conductor's handlers, the flow resumed (which clears the stream buffers)."""
        self.app.consumer_generation_id += 1
        await self.app.topics.on_partitions_assigned({TP(TOPIC, p) for p in range(self.partitions)})
        self.app.consumer.resume_flow()
        self.app.flow_control.resume()

    def revoke(self) -> None:
        """What faust's ``_on_partitions_revoked`` does to the flow and the buffers."""
        self.app.consumer.stop_flow()
        self.app.flow_control.suspend()
        self.app.flow_control.clear()

    def message(self, partition: int, offset: int) -> Any:
        """A fetched record as the aiokafka driver hands it on (this generation's)."""
        record = SimpleNamespace(
            topic=TOPIC,
            partition=partition,
            offset=offset,
            timestamp=1_700_000_000_000,
            timestamp_type=0,
            headers=[("ce_id", b"x")],
            key=b"k%d" % offset,
            value=b"v%d" % offset,
            checksum=None,
            serialized_key_size=2,
            serialized_value_size=2,
        )
        return self.consumer._to_message(TP(TOPIC, partition), record)

    async def deliver(self, messages: Sequence[Any]) -> None:
        """Each message through the conductor's handler for its partition (faust's drain
        loop's callback)."""
        handlers = self.conductor._tp_to_callback
        for m in messages:
            await handlers[m.tp](m)

    def fetched(self, counts: dict[int, range]) -> list[Any]:
        """Messages of several partitions, interleaved as a fetch hands them on."""
        per = [[self.message(p, o) for o in offsets] for p, offsets in counts.items()]
        return [m for group in itertools.zip_longest(*per) for m in group if m is not None]

    async def take(self) -> list[Any]:
        batch: list[Any] = await asyncio.wait_for(self._it.__anext__(), 10.0)
        self.batches.append([faustio.coordinates(e) for e in batch])
        return batch

    def commit(self) -> dict[int, int]:
        """faust's commit arithmetic over the acks so far (and its cache of the committed)."""
        offsets = self.consumer._filter_committable_offsets(list(self.consumer._acked))
        self.consumer._committed_offset.update(offsets)
        committed = {tp.partition: o for tp, o in offsets.items()}
        self.commits.append(committed)
        return committed

    async def take_ack_commit(self) -> list[Any]:
        batch = await self.take()
        await self.ack(batch)
        self.commit()
        return batch

    def outcome(self) -> dict[str, Any]:
        sensor = self.sensor
        return {
            "batches": self.batches,
            "commits": self.commits,
            "committed": {
                tp.partition: o for tp, o in self.consumer._committed_offset.items() if o
            },
            "unacked": len(self.consumer.unacked),
            "tracked": sensor.messages_in,
            "sensors": (sensor.events_in, sensor.events_out, sensor.messages_out),
            "buffered": sorted(tp.partition for tp in self.consumer._buffered_partitions),
        }

    async def close(self) -> None:
        if self._it is not None:
            await self._it.aclose()


Scenario = Callable[[Rig], Awaitable[None]]


def _both(
    scenario: Scenario, within_s: float = 0.5, **rig: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``scenario`` with faust's take and with the fast one. The window is long enough for
    faust's take to fill a batch from its buffer before its timer yields a part of it (its
    batches would otherwise depend on the machine's speed)."""

    async def run(fast: bool) -> dict[str, Any]:
        r = Rig(fast=fast, **rig)
        await r.start(within_s)
        try:
            await scenario(r)
            return r.outcome()
        finally:
            await r.close()

    return asyncio.run(run(False)), asyncio.run(run(True))


def test_full_batches_and_the_rest_are_faust_s() -> None:
    async def scenario(r: Rig) -> None:
        await r.deliver(r.fetched({0: range(2000), 1: range(1500), 2: range(1500)}))
        for _ in range(3):
            await r.take_ack_commit()

    stock, fast = _both(scenario)
    assert fast == stock
    assert [len(b) for b in fast["batches"]] == [2000, 2000, 1000]
    assert fast["commits"][-1] == {0: 2000, 1: 1500, 2: 1500}
    assert fast["unacked"] == 0 and fast["tracked"] == 5000
    assert fast["sensors"] == (5000, 5000, 5000)


def test_bursts_are_batched_as_faust_batches_them() -> None:
    async def scenario(r: Rig) -> None:
        offsets = itertools.count()
        for burst in (1, 30, 7, 400):
            await r.deliver([r.message(1, next(offsets)) for _ in range(burst)])
            await r.take_ack_commit()

    stock, fast = _both(scenario, within_s=0.2)
    assert fast == stock
    assert [len(b) for b in fast["batches"]] == [1, 30, 7, 400]
    assert [c[1] for c in fast["commits"]] == [1, 31, 38, 438]


def test_a_full_batch_does_not_wait_for_the_window_and_a_partial_one_ends_with_it() -> None:
    async def full(r: Rig) -> None:
        await r.deliver([r.message(0, o) for o in range(100)])
        await r.take_ack_commit()  # within take()'s 10 s: the 30 s window did not hold it

    async def partial(r: Rig) -> None:
        await r.deliver([r.message(0, o) for o in range(30)])
        await r.take_ack_commit()

    stock, fast = _both(full, within_s=30.0, size=100)
    assert fast == stock
    assert [len(b) for b in fast["batches"]] == [100]
    stock, fast = _both(partial, within_s=0.2, size=100)
    assert fast == stock
    assert [len(b) for b in fast["batches"]] == [30]


def test_a_buffer_under_pressure_pauses_its_partition_and_resumes_it_as_faust_does() -> None:
    seen: list[list[int]] = []

    async def scenario(r: Rig) -> None:
        paused: set[int] = set()

        class Buffered(set[TP]):  # the consumer's partitions paused on a full buffer
            def add(self, tp: TP) -> None:
                paused.add(tp.partition)
                super().add(tp)

        r.consumer._buffered_partitions = Buffered()
        # 1,000 messages into a 100-message buffer: the conductor's delivery waits for room
        delivering = asyncio.ensure_future(r.deliver(r.fetched({0: range(600), 2: range(400)})))
        while sum(map(len, r.batches)) < 1000:
            await r.take_ack_commit()
        await delivering
        seen.append(sorted(paused))

    stock, fast = _both(scenario, maxsize=100, size=64)
    assert seen[0] == seen[1] == [0, 2]  # both partitions were paused on the full buffer,
    assert fast["buffered"] == stock["buffered"] == []  # and fetch again once it drained
    assert fast["committed"] == stock["committed"] == {0: 600, 2: 400}
    assert fast["unacked"] == stock["unacked"] == 0
    for outcome in (stock, fast):
        taken = [c for b in outcome["batches"] for c in b]
        assert sorted(taken) == [(0, o) for o in range(600)] + [(2, o) for o in range(400)]
        assert all(len(b) <= 64 for b in outcome["batches"])
        for p in (0, 2):  # each partition in order
            assert [o for q, o in taken if q == p] == sorted(o for q, o in taken if q == p)


def test_events_buffered_while_the_flow_is_stopped_are_dropped_untracked_as_faust_drops_them() -> (
    None
):
    async def scenario(r: Rig) -> None:
        await r.deliver(r.fetched({0: range(300), 1: range(200)}))
        r.app.flow_control.suspend()  # a rebalance began: nothing taken now is processed
        waiting = asyncio.ensure_future(r.take())
        await asyncio.sleep(2 * r.within_s)
        assert not waiting.done()  # everything buffered was dropped
        await r.assign()
        await r.deliver(r.fetched({0: range(300, 350), 1: range(200, 210)}))
        batch = await waiting
        await r.ack(batch)
        r.commit()
        while sum(map(len, r.batches)) < 60:
            await r.take_ack_commit()

    stock, fast = _both(scenario)
    # faust's take yields at its timer's ticks, which began during the stop: it may yield the
    # first events alone; the fast take waits the window from the first event
    assert (
        _taken(fast)
        == _taken(stock)
        == [(0, o) for o in range(300, 350)] + [(1, o) for o in range(200, 210)]
    )
    assert fast["committed"] == stock["committed"] == {0: 350, 1: 210}
    assert fast["unacked"] == stock["unacked"] == 0
    assert fast["tracked"] == stock["tracked"] == 60
    assert fast["sensors"] == stock["sensors"] == (60, 60, 60)


def _taken(outcome: dict[str, Any]) -> list[tuple[int, int]]:
    return sorted(c for b in outcome["batches"] for c in b)


def test_a_rebalance_during_a_batch_clears_the_buffer_and_skips_the_old_generation() -> None:
    async def scenario(r: Rig) -> None:
        await r.deliver(r.fetched({0: range(1200), 1: range(1300)}))
        batch = await r.take()  # a full batch; 500 messages still buffered
        old = r.fetched({0: range(1800, 1810)})  # fetched before the rebalance
        r.revoke()  # while the agent works on the batch: the buffered 500 are dropped
        assert len(r.consumer.unacked) == 2000  # what faust's wait_empty waits for
        await r.ack(batch)
        r.commit()
        assert len(r.consumer.unacked) == 0
        late = asyncio.ensure_future(r.deliver(old))  # waits for the flow, as faust's does
        await r.assign()
        await late  # delivered into the new generation's buffer, skipped by the stream
        await r.deliver(r.fetched({0: range(1000, 1020), 1: range(1000, 1005)}))
        await r.take_ack_commit()

    stock, fast = _both(scenario)
    assert fast == stock
    assert [len(b) for b in fast["batches"]] == [2000, 25]
    assert fast["unacked"] == 0 and fast["tracked"] == 2025


def test_an_actor_cancelled_ends_the_batches_as_with_faust() -> None:
    async def scenario(r: Rig) -> None:
        await r.deliver([r.message(0, o) for o in range(40)])
        await r.take_ack_commit()
        await r.deliver([r.message(0, o) for o in range(40, 45)])
        r.stream.channel._throw(StopAsyncIteration())  # AsyncIterableActor.cancel
        await r.deliver([r.message(0, o) for o in range(45, 50)])
        with pytest.raises(StopAsyncIteration):  # the iteration ended (the stream stopped)
            await r.take()

    stock, fast = _both(scenario)
    assert fast == stock
    assert fast["batches"] == [[(0, o) for o in range(40)]]  # nothing taken after the error
    assert fast["unacked"] == 0 and fast["committed"] == {0: 40}


def test_a_failure_thrown_in_wakes_an_agent_waiting_for_its_next_batch() -> None:
    """An overlapped checkpoint that fails while the agent waits for a batch is thrown into
    its stream (``faustio.interrupter``): the wait ends (the batches end, faust's take
    raises it), so the agent goes on to settle the checkpoint and raise."""
    ended: list[str] = []

    async def scenario(r: Rig) -> None:
        await r.deliver([r.message(0, o) for o in range(10)])
        await r.take_ack_commit()
        waiting = asyncio.ensure_future(r.take())
        for _ in range(20):  # the take reaches its wait for a first event
            await asyncio.sleep(0)
        assert not waiting.done()
        faustio.interrupter(r.stream)(OutputError("injected: a checkpoint failed"))
        with pytest.raises((StopAsyncIteration, OutputError)) as caught:
            await waiting
        ended.append(type(caught.value).__name__)

    stock, fast = _both(scenario)
    assert fast["batches"] == stock["batches"] == [[(0, o) for o in range(10)]]
    assert ended[1] == "StopAsyncIteration"  # the fast take: the batches end


def test_the_agent_s_stream_is_taken_directly_and_others_are_left_to_faust() -> None:
    async def run() -> None:
        app = _app()
        topic = app.topic(TOPIC, value_serializer="raw")

        @app.agent(topic)
        async def agent(stream: Any) -> Any:
            async for batch in stream:  # pragma: no cover (never run)
                yield batch

        actor: Any = agent(index=0)  # the agent's stream, with its reply-unwrap processor
        assert actor.stream._processors
        assert faustbatch.unsupported(actor.stream, 0.25) is None
        assert faustbatch.unsupported(actor.stream, 0) == "no batch window"
        filtered: Any = app.stream(topic)
        filtered = filtered.filter(lambda v: True)
        assert faustbatch.unsupported(filtered, 0.25) == "it has processors"
        plain: Any = app.stream(topic)
        it: Any = faustio.batches(plain, 10, 0.1)
        assert it in plain._active_agens  # closed by the stream's stop, as faust's takes
        await it.aclose()
        faust_s: Any = faustio.batches(filtered, 10, 0.1)  # left to faust's noack_take
        assert faust_s.__qualname__ == "Stream.noack_take"
        await faust_s.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"k", b"v", [("ce_id", b"x"), ("ce_type", b"y")]),
        (None, b"v", []),
        (b"k", None, None),
        (None, None, [("a", None)]),
        (b"", b"", [("a", b"1"), ("a", b"2")]),
        ("k", "v", [("a", b"1")]),  # not what aiokafka hands on: faust's decoding
    ],
)
def test_the_input_topic_s_events_are_faust_s(key: Any, value: Any, headers: Any) -> None:
    async def run() -> None:
        app = _app()
        ours = faustio.input_topic(app, TOPIC, 3)
        faust_s = app.topic(
            TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        message = faust.types.Message(TOPIC, 1, 7, 1.5, 0, headers, key, value, None)
        got, want = await ours.decode(message), await faust_s.decode(message)
        assert type(got) is type(want)
        assert (got.key, got.value, got.headers, got.message) == (
            want.key,
            want.value,
            want.headers,
            want.message,
        )
        assert type(got.key) is type(want.key) and type(got.value) is type(want.value)

    asyncio.run(run())
