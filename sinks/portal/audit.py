"""Group commit for the access log: many request threads, one writer.

Every data request is logged before its answer is sent. Done one by one, each append costs a
lock and two fsyncs (the log and its head), which caps a busy portal at the disk's fsync
rate; here request threads hand their entry to one writer thread and wait until the batch
holding it is durable (one write and one fsync for all entries that arrived meanwhile). The
order of entries is the order the writer took them; the chain is the same as one by one.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from sinks.reports import AccessLog

__all__ = ["AuditWriter"]

logger = logging.getLogger(__name__)

_STOP = object()


class AuditWriter:
    """Appends entries to ``log`` from one thread, in batches of up to ``max_batch``."""

    def __init__(self, log: AccessLog, *, max_batch: int = 256, timeout_s: float = 30.0) -> None:
        self.log = log
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def write(self, entry: dict[str, object]) -> dict[str, object]:
        """Append ``entry``; returns once it is durable (raises if the write failed)."""
        done: Future[dict[str, object]] = Future()
        self._queue.put((entry, done))
        return done.result(timeout=self.timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            pairs: list[tuple[dict[str, object], Future[dict[str, object]]]] = batch  # type: ignore[assignment]
            try:
                written = self.log.append_many([e for e, _ in pairs])
            except Exception as exc:  # every waiting request fails: none is answered unlogged
                logger.exception("access log write failed entries=%d", len(pairs))
                for _, fut in pairs:
                    fut.set_exception(exc)
                continue
            for (_, fut), w in zip(pairs, written, strict=True):
                fut.set_result(w)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=self.timeout_s)
