"""``faustio.fast_delivery``: faust's own ``Consumer._drain_messages`` over a fake fetch, with
faust's ``wait_first`` and with the fast path, gives the same deliveries in every case:
callbacks that finish at once, that wait and finish, that wait until a rebalance stops the
flow (abandoned, as faust abandons them), that fail, and a flow already stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from mode import Service

from streams import faustio

TOPIC = "raw"


class Message(SimpleNamespace):
    topic: str
    partition: int
    offset: int


class Drainer(Service):
    """What faust's ``Consumer._drain_messages`` reads of its consumer, faust's method itself
    run over it; ``behaviour`` says what the delivery callback does with each offset:
    ``now`` (finishes in its first step), ``wait`` (awaits the loop once, then finishes),
    ``block`` (waits for a future nobody resolves: stops the flow, as a rebalance does, once
    it is blocked), ``fail`` (raises)."""

    _drain_messages: Any = Consumer._drain_messages
    consumer_stopped_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, behaviour: list[str], *, flow_stopped: bool = False) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.suspend_flow = asyncio.Event()  # as faust's Consumer
        if flow_stopped:
            self.suspend_flow.set()
        self._read_offset: dict[TP, int | None] = {TP(TOPIC, 0): None}
        self.diag = SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None)  # type: ignore[assignment]
        self._commit_every = None
        self.app = SimpleNamespace(
            consumer=self, topics=SimpleNamespace(acks_enabled_for=lambda topic: True)
        )
        self.fetcher = Service()
        self.events: list[tuple[int, str]] = []
        self.wait_firsts = 0
        self.callback = self._deliver
        original = self.wait_first

        async def counted(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109
            self.wait_firsts += 1
            return await original(*coros, timeout=timeout)

        self.wait_first = counted  # type: ignore[method-assign]

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109
        for offset in range(len(self.behaviour)):
            yield TP(TOPIC, 0), Message(topic=TOPIC, partition=0, offset=offset)
        self.fetcher._stopped.set()  # one fetch: faust's loop ends after it

    async def _deliver(self, message: Message) -> None:
        how = self.behaviour[message.offset]
        self.events.append((message.offset, "start"))
        try:
            if how == "wait":
                await asyncio.sleep(0)
            elif how == "block":
                asyncio.get_running_loop().call_soon(self.suspend_flow.set)
                await asyncio.get_running_loop().create_future()
            elif how == "fail":
                raise ValueError(f"bad message {message.offset}")
        except asyncio.CancelledError:
            self.events.append((message.offset, "cancelled"))
            raise
        self.events.append((message.offset, "done"))


async def _drain(behaviour: list[str], *, fast: bool, flow_stopped: bool = False) -> Drainer:
    drainer = Drainer(behaviour, flow_stopped=flow_stopped)
    if fast:
        faustio.fast_delivery(drainer.app)  # type: ignore[arg-type]
    await drainer._drain_messages(drainer.fetcher)
    await asyncio.sleep(0.01)  # let faust's cancellations land
    return drainer


def _both(behaviour: list[str], **kw: Any) -> tuple[Drainer, Drainer]:
    return (
        asyncio.run(_drain(behaviour, fast=False, **kw)),
        asyncio.run(_drain(behaviour, fast=True, **kw)),
    )


def test_callbacks_that_finish_at_once_are_delivered_without_faust_s_wait() -> None:
    stock, fast = _both(["now"] * 50)
    assert fast.events == stock.events == [(o, s) for o in range(50) for s in ("start", "done")]
    assert (stock.wait_firsts, fast.wait_firsts) == (50, 0)
    assert fast.suspend_flow.__class__.__name__ == "_FlowEvent"


def test_a_callback_that_waits_continues_under_faust_s_wait() -> None:
    behaviour = ["now", "wait", "now", "wait", "wait", "now"]
    stock, fast = _both(behaviour)
    assert fast.events == stock.events
    assert all((o, "done") in fast.events for o in range(len(behaviour)))


def test_a_blocked_delivery_is_abandoned_when_the_flow_stops_as_faust_abandons_it() -> None:
    behaviour = ["now", "now", "block", "now", "now"]
    stock, fast = _both(behaviour)
    assert fast.events == stock.events
    assert (2, "cancelled") in fast.events
    assert (2, "done") not in fast.events


def test_with_the_flow_stopped_faust_s_own_wait_runs() -> None:
    stock, fast = _both(["now", "wait", "now"], flow_stopped=True)
    assert fast.events == stock.events


@pytest.mark.parametrize("fast", [False, True])
def test_a_failing_callback_raises_as_with_faust(fast: bool) -> None:
    with pytest.raises(ValueError, match="bad message 1"):
        asyncio.run(_drain(["now", "fail", "now"], fast=fast))


def test_installing_twice_is_installing_once() -> None:
    async def run() -> Drainer:
        drainer = Drainer(["now", "wait"])
        faustio.fast_delivery(drainer.app)  # type: ignore[arg-type]
        first = drainer.wait_first
        faustio.fast_delivery(drainer.app)  # type: ignore[arg-type]
        assert drainer.wait_first is first
        await drainer._drain_messages(drainer.fetcher)
        return drainer

    assert asyncio.run(run()).events == [(0, "start"), (0, "done"), (1, "start"), (1, "done")]
