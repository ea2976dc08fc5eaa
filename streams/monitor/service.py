"""The monitor: lag, pipeline and broker health collected together into one :class:`Snapshot`,
and each group's total lag over the last hour (the status page's sparklines)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from streams.monitor.brokers import BrokerWatcher
from streams.monitor.collector import LagCollector
from streams.monitor.config import MonitorConfig
from streams.monitor.health import HealthCollector
from streams.monitor.kafka_io import KafkaClients, now_ms
from streams.monitor.model import GroupLag, Snapshot

__all__ = ["HISTORY_S", "Monitor"]

HISTORY_S = 3600  # lag history kept per group

logger = logging.getLogger(__name__)


class Monitor:
    """Collects snapshots on demand or every ``interval`` seconds in a background thread."""

    def __init__(
        self,
        config: MonitorConfig,
        clock: Callable[[], int] = now_ms,
        *,
        health: bool = True,
    ) -> None:
        self.config = config
        self.clients = KafkaClients(config.kafka, config.request_timeout_s)
        self.lag = LagCollector(config, self.clients, clock)
        self.health = HealthCollector(config, self.clients) if health else None
        self.brokers = BrokerWatcher(self.clients, config.broker_metrics) if health else None
        self._history: dict[str, deque[tuple[int, int]]] = {}
        self.clock = clock
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def collect(self) -> Snapshot:
        """One collection (the Kafka clients are not thread-safe: one collection at a time)."""
        with self._lock:
            started = time.monotonic()
            groups = self.lag.collect()
            taken = self.clock()
            history = self._remember(taken, groups)
            if self.health is not None and self.brokers is not None:
                snap = Snapshot(
                    taken, groups, self.health.collect(), self.brokers.collect(), history
                )
            else:
                snap = Snapshot(taken, groups, history=history)
            self._latest = snap
            logger.info(
                "collected groups=%d all_ok=%s seconds=%.2f",
                len(groups),
                snap.all_ok,
                time.monotonic() - started,
            )
            return snap

    def _remember(
        self, taken: int, groups: tuple[GroupLag, ...]
    ) -> dict[str, tuple[tuple[int, int], ...]]:
        """Add each group's total lag to its history; drop points older than an hour."""
        horizon = taken - HISTORY_S * 1000
        for g in groups:
            ring = self._history.setdefault(g.group, deque())
            ring.append((taken, g.total_lag))
        for name in list(self._history):
            ring = self._history[name]
            while ring and ring[0][0] < horizon:
                ring.popleft()
            if not ring:
                del self._history[name]
        return {name: tuple(ring) for name, ring in self._history.items()}

    @property
    def latest(self) -> Snapshot | None:
        return self._latest

    def start(self, interval_s: float) -> None:
        """Collect now and then every ``interval_s`` seconds until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.collect()
                except Exception:  # keep serving the last snapshot; count and log
                    self.errors += 1
                    logger.exception("collection failed errors=%d", self.errors)
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="tuyen-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.clients.close()
