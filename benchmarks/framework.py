"""The small framework every benchmark uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schemas.kafka import KafkaConnection


@dataclass(frozen=True)
class Measurement:
    """One figure: a value and its unit (``events/s``, ``s``, ``MiB``)."""

    value: float
    unit: str


@dataclass(frozen=True)
class BenchResult:
    """A measured figure beside its baseline from the same run.

    ``higher_is_better`` decides how the ratio reads: for rates the ratio is
    measured/baseline, for durations baseline/measured, so >1 always means "faster".
    ``target`` is the issue's aim for the ratio (or for the value when no baseline).
    """

    name: str
    measured: Measurement
    baseline_name: str | None = None
    baseline: Measurement | None = None
    higher_is_better: bool = True
    target: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline.value == 0 or self.measured.value == 0:
            return None
        if self.higher_is_better:
            return self.measured.value / self.baseline.value
        return self.baseline.value / self.measured.value


@dataclass
class BenchContext:
    """What a benchmark gets: a real broker, a scratch folder, a size knob, a name maker."""

    kafka: KafkaConnection
    workdir: Path
    scale: float = 1.0
    _counter: int = 0

    @property
    def bootstrap(self) -> str:
        """The brokers' address (for a child process's ``--bootstrap``)."""
        return self.kafka.bootstrap

    def unique(self, stem: str) -> str:
        self._counter += 1
        return f"bench-{stem}-{int(time.time())}-{self._counter}"

    def n(self, base: int) -> int:
        """``base`` scaled by ``--scale`` (at least 1)."""
        return max(1, int(base * self.scale))


def measure_rate(count: int, fn: Callable[[], object]) -> Measurement:
    """Run ``fn`` once and report ``count`` items per second."""
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    return Measurement(count / elapsed if elapsed > 0 else float("inf"), "items/s")
