"""Test helpers: polling with a deadline instead of sleeping, unique names, promtool, a
commit that waits for a fresh broker, records' current states."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class ConditionTimeout(AssertionError):
    """The condition did not hold before the deadline."""


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``condition`` until it returns something truthy; return it, or fail at the deadline.

    The pause between calls is a polling interval, not synchronisation: the test proceeds
    as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise ConditionTimeout(f"{text} not met within {timeout:.1f}s (last={last!r})")
        time.sleep(interval)


def newest(items: Iterable[T], key: Callable[[T], K], order: Callable[[T], Any]) -> dict[K, T]:
    """The item of each ``key`` with the greatest ``order`` (a record's current state: the
    change with the highest ``(record_version, time, event id)``)."""
    latest: dict[K, T] = {}
    for item in items:
        k = key(item)
        cur = latest.get(k)
        if cur is None or order(item) > order(cur):
            latest[k] = item
    return latest


def unique_name(prefix: str) -> str:
    """A topic or group name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def commit_offset(consumer: Consumer, topic: str, offset: int) -> None:
    """Commit one offset, retrying while a fresh broker's coordinator or new topic settles."""
    errors: list[str] = []

    def attempt() -> bool:
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        except KafkaException as exc:  # e.g. coordinator loading, topic not yet known
            errors.append(str(exc))
            return False
        return True

    wait_until(attempt, timeout=30, interval=0.05, message=lambda: f"commit: {errors[-3:]}")


def promtool_check_metrics(text: bytes) -> None:
    """``promtool check metrics`` reports nothing on ``text`` (Debian's prometheus package)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed: apt-get install prometheus"
    res = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res


def record_decisions(monkeypatch: Any) -> list[str]:
    """The record types the catalog's snapshots decide from now on (``sinks.catalog._decide``
    spied on, still run), in order, in the list returned."""
    from sinks import catalog

    decided: list[str] = []
    real = catalog._decide

    def spy(con: Any, rt: str, states: list[str]) -> None:
        decided.append(rt)
        real(con, rt, states)

    monkeypatch.setattr(catalog, "_decide", spy)
    return decided
