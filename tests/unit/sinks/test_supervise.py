"""The `tuyen sink` process's supervision (sinks.supervise.SinkSupervisor) driven with fake
runners, no Kafka:

- every runner returns: no failure, ``stop`` untouched, one ``sink-<name>`` thread each;
- one runner raises (anything, ``SystemExit`` included): its name is returned, ``stop`` is
  set, the others see it and return; the CRITICAL line names the sink and its topic;
- a runner that ignores ``stop`` after another failed: ``run`` returns once the grace has
  passed (real time, and on the injected clock), leaving it behind (a daemon thread);
- step 3 alone on fake threads: joins of 0.5 s until none is alive, the grace counted from
  the first step that saw a failure, never without one.

Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from sinks.supervise import SinkSupervisor

DEADLINE_S = 10.0  # how long a test waits for something that takes well under a second


@dataclass(frozen=True)
class FakeConfig:
    name: str
    topic: str


@dataclass
class FakeRunner:
    """A sink runner: returns at once, or when ``stop`` is set (``until_stop``), or raises
    ``error``, or ignores ``stop`` until the test releases it (``stubborn``)."""

    config: FakeConfig
    until_stop: bool = False
    error: BaseException | None = None
    stubborn: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    calls: list[tuple[str, float | None]] = field(default_factory=list)
    saw_stop: bool | None = None
    returned: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> None:
        self.calls.append((threading.current_thread().name, exit_when_idle_s))
        if self.error is not None:
            raise self.error
        if self.stubborn:
            self.released.wait(DEADLINE_S)  # ignores stop; the test releases it at its end
        elif self.until_stop:
            self.saw_stop = stop.wait(DEADLINE_S)
        self.returned.set()


def runner(
    name: str,
    *,
    until_stop: bool = False,
    error: BaseException | None = None,
    stubborn: bool = False,
) -> FakeRunner:
    return FakeRunner(
        FakeConfig(name, f"tier.{name}"), until_stop=until_stop, error=error, stubborn=stubborn
    )


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds, failing at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        threading.Event().wait(0.01)


def supervise(sup: SinkSupervisor, during: Callable[[], None] | None = None) -> list[str]:
    """``sup.run()`` on a thread (``during`` runs meanwhile on this one), with a deadline: a
    hung supervisor fails the test."""
    result: list[list[str]] = []
    t = threading.Thread(target=lambda: result.append(sup.run()), daemon=True)
    t.start()
    if during is not None:
        during()
    t.join(DEADLINE_S)
    assert not t.is_alive(), "the supervisor did not return before the deadline"
    return result[0]


@pytest.fixture
def release() -> Iterator[list[FakeRunner]]:
    """Stubborn runners to release when the test ends (their threads then return)."""
    stubborn: list[FakeRunner] = []
    yield stubborn
    for r in stubborn:
        r.released.set()


def test_all_return() -> None:
    runners = [runner("national"), runner("dlq")]
    stop = threading.Event()
    sup = SinkSupervisor(runners, stop, exit_when_idle_s=2.0, grace_s=30.0)
    assert supervise(sup) == []
    assert not stop.is_set()
    assert [r.calls for r in runners] == [[("sink-national", 2.0)], [("sink-dlq", 2.0)]]


def test_stop_from_outside() -> None:
    """What SIGTERM does: ``stop`` set by the caller; the runners return, nothing failed."""
    runners = [runner("national", until_stop=True), runner("dlq", until_stop=True)]
    stop = threading.Event()
    sup = SinkSupervisor(runners, stop, grace_s=30.0)

    def sigterm() -> None:
        wait_for(lambda: all(r.calls for r in runners))  # both running
        stop.set()

    assert supervise(sup, sigterm) == []
    assert [r.saw_stop for r in runners] == [True, True]


@pytest.mark.parametrize(
    "error", [RuntimeError("disk full"), SystemExit(3)], ids=lambda e: type(e).__name__
)
def test_one_raises(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    others = [runner("national", until_stop=True), runner("dlq", until_stop=True)]
    bad = runner("province", error=error)
    stop = threading.Event()
    sup = SinkSupervisor([others[0], bad, others[1]], stop, grace_s=30.0)
    with caplog.at_level(logging.CRITICAL, logger="sinks.supervise"):
        assert supervise(sup) == ["province"]
    assert stop.is_set()
    assert [r.saw_stop for r in others] == [True, True]
    assert all(r.returned.is_set() for r in others)
    [rec] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert rec.getMessage() == (
        "sink thread died, stopping the process sink=province topic=tier.province"
    )
    assert rec.exc_info is not None and rec.exc_info[1] is error


def test_grace_then_return(release: list[FakeRunner]) -> None:
    """A runner that ignores ``stop``: ``run`` returns once the grace (0.2 s) has passed."""
    stubborn = runner("national", stubborn=True)
    release.append(stubborn)
    stop = threading.Event()
    sup = SinkSupervisor([stubborn, runner("dlq", error=ValueError("x"))], stop, grace_s=0.2)
    started = time.monotonic()
    assert supervise(sup) == ["dlq"]
    assert time.monotonic() - started >= 0.2
    assert stop.is_set()
    assert not stubborn.returned.is_set()  # left behind (a daemon thread)


def test_grace_on_the_injected_clock(release: list[FakeRunner]) -> None:
    """The grace is measured on ``clock``, from the first join step that saw the failure: a
    clock 100 s further at each look: the failure seen at 100, the 30 s grace over at the
    next look (200), so ``run`` returns after one join step."""
    now = [0.0]

    def clock() -> float:
        now[0] += 100.0
        return now[0]

    stubborn = runner("national", stubborn=True)
    release.append(stubborn)
    sup = SinkSupervisor(
        [stubborn, runner("dlq", error=ValueError("x"))],
        threading.Event(),
        grace_s=30.0,
        clock=clock,
    )
    assert supervise(sup) == ["dlq"]
    assert now[0] == 200.0  # looked twice: the failure seen, then the grace over


@dataclass
class FakeThread:
    """A thread alive for its first ``joins`` joins (records each join's timeout)."""

    joins: int
    timeouts: list[float | None] = field(default_factory=list)

    def is_alive(self) -> bool:
        return len(self.timeouts) < self.joins

    def join(self, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)


def test_join_steps_without_failure() -> None:
    """Step 3 alone, on fake threads: joined in 0.5 s steps until none is alive; a healthy
    sink outlasting many steps is never cut off (grace 0): the grace starts at a failure
    only, and the clock is not even read before one."""
    reads: list[int] = []

    def clock() -> float:
        reads.append(1)
        return 1e9 * len(reads)

    sup = SinkSupervisor([], threading.Event(), grace_s=0.0, clock=clock)
    threads = [FakeThread(joins=5), FakeThread(joins=2)]
    sup.step3_join(threads)
    assert [len(t.timeouts) for t in threads] == [5, 5]  # one round per step, all joined
    assert {x for t in threads for x in t.timeouts} == {SinkSupervisor.JOIN_STEP_S}
    assert reads == []


def test_join_steps_after_failure() -> None:
    """Step 2 then step 3, on fake threads and a fake clock 10 s further at each look: the
    failure is seen at the first step (t=10), the grace (25 s) is over at t=40 (40 - 10 > 25), so
    the join stops there while the other thread is still alive."""
    now = [0.0]

    def clock() -> float:
        now[0] += 10.0
        return now[0]

    stop = threading.Event()
    sup = SinkSupervisor([], stop, grace_s=25.0, clock=clock)
    sup.step2_run_one(runner("dlq", error=ValueError("x")))
    assert stop.is_set() and sup.failed == ["dlq"]
    alive = FakeThread(joins=1000)
    sup.step3_join([alive])
    assert now[0] == 40.0  # looks: 10 (seen), 20, 30, 40 (over)
    assert len(alive.timeouts) == 3
