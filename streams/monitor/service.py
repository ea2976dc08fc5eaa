"""The monitor: lag and health collected together into one :class:`Snapshot`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from streams.monitor.collector import LagCollector
from streams.monitor.config import MonitorConfig
from streams.monitor.health import HealthCollector
from streams.monitor.kafka_io import KafkaClients, now_ms
from streams.monitor.model import Snapshot

__all__ = ["Monitor"]

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
            if self.health is not None:
                snap = Snapshot(self.clock(), groups, self.health.collect())
            else:
                snap = Snapshot(self.clock(), groups)
            self._latest = snap
            logger.info(
                "collected groups=%d all_ok=%s seconds=%.2f",
                len(groups),
                snap.all_ok,
                time.monotonic() - started,
            )
            return snap

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
