"""The `tuyen sink` process's supervision: one thread per sink, and one failed sink stops them
all. No Kafka here (the runners are a protocol, ``sinks.consumer.SinkRunner`` in production).

:meth:`SinkSupervisor.run` runs four numbered steps:

1. **start**: one daemon thread per runner (named ``sink-<name>``), each calling
   ``runner.run(stop, exit_when_idle_s=...)``; a runner returns when ``stop`` is set (or
   when it has been idle that long);
2. **fail**: a runner whose ``run`` raises anything (``BaseException``: a dead sink thread must
   never go unnoticed) is logged CRITICAL (``sink thread died, stopping the process sink=...
   topic=...``, with the traceback), recorded as failed, and ``stop`` is set, so the other
   runners stop too;
3. **join**: the threads are joined in :attr:`SinkSupervisor.JOIN_STEP_S` steps until none is
   alive;
4. **grace**: from the first join step that sees a failure, the others get ``grace_s`` to
   stop; after it ``run`` returns anyway (the threads are daemons: the process exits without
   them, for its supervisor to restart it).

``run`` returns the failed sinks' names (in the order they failed; empty: every runner
returned). ``stop`` is the caller's: the CLI sets it on SIGTERM/SIGINT (signal handlers are
installed by the main thread, outside this class). ``tests/unit/sinks/test_supervise.py``
drives the steps with fake runners.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["Joinable", "SinkSupervisor", "SupervisedRunner"]

logger = logging.getLogger(__name__)


class _RunnerConfig(Protocol):
    """What the supervisor reads of a runner's configuration (``sinks.config.SinkConfig``)."""

    @property
    def name(self) -> str: ...

    @property
    def topic(self) -> str: ...


class SupervisedRunner(Protocol):
    """What the supervisor needs of a sink runner (``sinks.consumer.SinkRunner``)."""

    @property
    def config(self) -> _RunnerConfig: ...

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> object: ...


class Joinable(Protocol):
    """What the join step needs of a thread (``threading.Thread``)."""

    def is_alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...


class SinkSupervisor:
    """Runs ``runners`` on threads until they all return, or one failed and the others had
    ``grace_s`` to stop (the numbered steps: the module's docstring)."""

    #: how long one join waits for one thread (the loop looks at failures between joins)
    JOIN_STEP_S = 0.5

    def __init__(
        self,
        runners: Sequence[SupervisedRunner],
        stop: threading.Event,
        *,
        exit_when_idle_s: float | None = None,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runners = list(runners)
        self.stop = stop
        self.exit_when_idle_s = exit_when_idle_s
        self.grace_s = grace_s
        self.clock = clock
        self._failed: list[str] = []
        self._lock = threading.Lock()

    @property
    def failed(self) -> list[str]:
        """The names of the sinks that failed so far, in the order they failed."""
        with self._lock:
            return list(self._failed)

    def run(self) -> list[str]:
        """Steps 1-4; returns the failed sinks' names (empty: every runner returned)."""
        threads = self.step1_start()
        self.step3_join(threads)
        return self.failed

    def step1_start(self) -> list[threading.Thread]:
        """1. One daemon thread per runner, started."""
        threads = [
            threading.Thread(
                target=self.step2_run_one, args=(r,), name=f"sink-{r.config.name}", daemon=True
            )
            for r in self.runners
        ]
        for t in threads:
            t.start()
        return threads

    def step2_run_one(self, runner: SupervisedRunner) -> None:
        """2. (on the runner's thread) Run it; anything it raises: log, record, set ``stop``."""
        try:
            runner.run(self.stop, exit_when_idle_s=self.exit_when_idle_s)
        except BaseException:  # a dead sink thread must never go unnoticed
            logger.critical(
                "sink thread died, stopping the process sink=%s topic=%s",
                runner.config.name,
                runner.config.topic,
                exc_info=True,
            )
            with self._lock:
                self._failed.append(runner.config.name)
            self.stop.set()

    def step3_join(self, threads: Sequence[Joinable]) -> None:
        """3. Join in ``JOIN_STEP_S`` steps until no thread is alive, or 4. the grace after a
        failure has passed (the threads left are daemons: return anyway)."""
        failed_at: float | None = None
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=self.JOIN_STEP_S)
            if failed_at is None and self.failed:
                failed_at = self.clock()
            if failed_at is not None and self.step4_grace_over(failed_at):
                break  # the others did not stop in time: return anyway (daemon threads)

    def step4_grace_over(self, failed_at: float) -> bool:
        """4. Whether the others had their ``grace_s`` since the failure was first seen."""
        return self.clock() - failed_at > self.grace_s
