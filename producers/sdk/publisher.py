"""Sends outbox rows with an idempotent confluent-kafka producer; deletes a row only when
its delivery report says it is on the broker.

State kept in memory (rebuilt from the outbox on every start):

- ``cursor``: every row with a smaller rowid has been handed to librdkafka in this session;
- ``retry``: rows whose delivery failed (message timeout while the broker was away, a
  fatal producer error, ...). They are produced again, in order, before newer rows;
- ``delivered``: confirmed rows, deleted from the outbox in one transaction per batch.

After a crash the rows still stored are produced again with the same bytes (same event
ids): delivery is at least once and consumers deduplicate on the event id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from types import MethodType
from typing import Any, TypeAlias

from confluent_kafka import KafkaError, Producer

from producers.config import ProducerConfig
from producers.sdk.outbox import Outbox, OutboxRow, StoredBatch
from schemas.kafka import producer as new_producer

logger = logging.getLogger(__name__)

# What one produce call needs: rowid (for the delivery report), topic, key, value, headers.
_Item: TypeAlias = tuple[int, str, bytes | None, bytes | None, list[tuple[str, bytes]]]

_RETRY_BACKOFF_S = 0.5
# Confirmed rows are deleted in one transaction per this many rows or this long, whichever
# comes first (fewer, larger deletes of consecutive rowids are much cheaper). A crash can
# only make the next start resend rows confirmed in the last interval: harmless duplicates.
_COMMIT_EVERY = 20_000
_COMMIT_INTERVAL_S = 0.2


class OutboxPublisher:
    """Pumps one :class:`Outbox` into Kafka. Call :meth:`poll` regularly (or
    :meth:`start_background`), :meth:`flush` to wait, :meth:`close` at the end."""

    def __init__(
        self, outbox: Outbox, config: ProducerConfig, *, producer: Producer | None = None
    ) -> None:
        self.outbox = outbox
        self.config = config
        self._own_producer = producer is None
        self._producer: Producer = producer or new_producer(
            config.kafka, config.producer_settings()
        )
        self._lock = threading.RLock()
        self._cursor = 0
        self._inflight = 0
        self._retry: list[int] = []
        self._retry_at = 0.0
        self._delivered: list[int] = []
        self._last_commit = time.monotonic()
        self._fatal: KafkaError | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered_total = 0
        self.failed_total = 0

    # ---- delivery reports -----------------------------------------------------------
    def _on_delivery(self, rowid: int, err: KafkaError | None, _msg: Any) -> None:
        self._inflight -= 1
        if err is None:
            self._delivered.append(rowid)
            return
        self.failed_total += 1
        self._retry.append(rowid)
        if err.fatal():
            self._fatal = err
        if err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            return  # we purged on close: the row stays for the next start
        if err.code() != KafkaError._MSG_TIMED_OUT or self.failed_total % 10_000 == 1:
            logger.warning(
                "delivery failed, will resend rowid=%d code=%s error=%s", rowid, err.name(), err
            )

    # ---- producing ------------------------------------------------------------------
    def _produce(self, items: Iterable[_Item]) -> tuple[int, int]:
        """Hand ``(rowid, topic, key, value, headers)`` items to librdkafka, in order, until
        the queue is full. Returns how many were accepted and the last accepted rowid."""
        produce = self._producer.produce
        cb = self._on_delivery
        bind = MethodType  # bind(cb, rowid)(err, msg) calls cb(rowid, err, msg): one small
        n = last = 0  # object per message (a functools.partial makes three for the GC to track)
        for rowid, topic, key, value, headers in items:
            try:
                produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,  # type: ignore[arg-type]
                    on_delivery=bind(cb, rowid),
                )
            except BufferError:
                break
            n += 1
            last = rowid
        self._inflight += n
        return n, last

    def _produce_rows(self, rows: Sequence[OutboxRow]) -> int:
        """Rows read back from the outbox; returns how many were accepted."""
        n, _ = self._produce((r.rowid, r.topic, r.key, r.value, r.headers) for r in rows)
        return n

    def offer(self, batch: StoredBatch) -> None:
        """A batch just appended to the outbox: produce it at once from memory when nothing
        older waits (saves reading it back); otherwise the pump reads it from disk in order."""
        with self._lock:
            if not batch or self._retry or batch.first_rowid != self._cursor_start():
                self._wake.set()
                return
            room = max(self.config.max_in_flight - self._inflight, 0)
            n, last = self._produce(
                zip(
                    batch.rowids[:room],  # the shortest: zip stops there
                    repeat(batch.topic),
                    batch.keys,
                    batch.values,
                    batch.headers,
                    strict=False,
                )
            )
            if n:
                self._cursor = last + 1
            self._producer.poll(0)
            self._maybe_commit()

    def _cursor_start(self) -> int:
        """The next rowid to produce from the outbox (the first stored one at start)."""
        if self._cursor == 0:
            first = self.outbox.pending(limit=1)
            self._cursor = first[0].rowid if first else self.outbox.next_rowid
        return self._cursor

    def _feed(self) -> None:
        if self._fatal is not None:
            self._recreate()
        room = self.config.max_in_flight - self._inflight
        if self._retry and room > 0 and time.monotonic() >= self._retry_at:
            self._retry.sort()
            take, self._retry = self._retry[:room], self._retry[room:]
            rows = self.outbox.get(take)
            n = self._produce_rows(rows)
            if n < len(rows):
                self._retry = [r.rowid for r in rows[n:]] + self._retry
            self._retry_at = time.monotonic() + _RETRY_BACKOFF_S
            room -= n
        while room > 0 and not self._retry:
            rows = self.outbox.pending(
                from_rowid=self._cursor_start(), limit=min(room, self.config.read_batch)
            )
            if not rows:
                break
            n = self._produce_rows(rows)
            if n:
                self._cursor = rows[n - 1].rowid + 1
            if n < len(rows):
                break
            room -= n

    def _recreate(self) -> None:
        """A fatal idempotent-producer error: new producer, resend everything unconfirmed."""
        logger.error("fatal producer error, recreating producer error=%s", self._fatal)
        if not self._own_producer:
            raise RuntimeError(f"fatal error on a shared producer: {self._fatal}")
        self._producer.purge()
        self._producer.poll(0)
        self._producer = new_producer(self.config.kafka, self.config.producer_settings())
        self._fatal = None
        self._inflight = 0
        self._retry = []
        self._commit()
        self._cursor = 0

    def _commit(self) -> None:
        if self._delivered:
            done, self._delivered = self._delivered, []
            self.outbox.remove(done)
            self.delivered_total += len(done)
        self._last_commit = time.monotonic()

    def _maybe_commit(self) -> None:
        if len(self._delivered) >= _COMMIT_EVERY or (
            self._delivered and time.monotonic() - self._last_commit >= _COMMIT_INTERVAL_S
        ):
            self._commit()

    # ---- public pump ----------------------------------------------------------------
    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports (waiting up to ``timeout``), delete confirmed rows, produce
        pending and retried rows."""
        with self._lock:
            self._producer.poll(timeout)
            self._maybe_commit()
            self._feed()

    @property
    def idle(self) -> bool:
        """Nothing in flight, nothing to retry, nothing confirmed but not yet deleted."""
        with self._lock:
            return self._inflight == 0 and not self._retry and not self._delivered

    def flush(self, timeout: float = 30.0) -> int:
        """Pump until every stored row is confirmed and deleted, or ``timeout`` seconds pass.
        Returns the number of rows still in the outbox (0: all delivered)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._feed()
                self._producer.poll(0.05)
                self._commit()
                remaining = self.outbox.count()
                if remaining == 0 and self._inflight == 0:
                    return 0
            if time.monotonic() >= deadline:
                return remaining

    def start_background(self, interval: float = 0.05) -> None:
        """Run the pump in a daemon thread (callers then never need to call :meth:`poll`)."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll(0)
                except Exception:  # keep pumping: the outbox still holds everything
                    logger.exception("outbox pump failed")
                self._wake.wait(interval)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="outbox-pump", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> int:
        """Flush for up to ``timeout`` seconds, stop the pump; rows not confirmed stay in
        the outbox for the next start. Returns how many stayed."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        remaining = self.flush(timeout)
        with self._lock:
            if self._own_producer:
                self._producer.purge()
                self._producer.poll(0)
            self._commit()
        return remaining
