"""The durable local outbox: a SQLite database (WAL mode) holding every event a station has
accepted until Kafka confirms it, plus the counters that must survive restarts.

Tables (one database per station client):

- ``outbox(rowid, event_id, topic, key, value, headers)``: encoded messages, in the order
  they were accepted. A row is deleted only after a successful delivery report.
- ``meta(name, value)``: ``station_seq``, the last sequence number handed out.
- ``versions(record_type, record_id, version)``: the last ``record_version`` per record.

The event rows and the counters are written in the same transaction, so after a crash the
counters never run behind the events (``station_seq`` and ``record_version`` stay monotonic
across restarts). Pure: no Kafka here (see :mod:`producers.sdk.publisher`).

The connection uses ``locking_mode=EXCLUSIVE``: one process per outbox file. The OS drops
the lock when that process dies, even by ``kill -9``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from producers.exceptions import OutboxError, OutboxLocked
from schemas import KafkaMessage

logger = logging.getLogger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    rowid INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB,
    headers BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (record_type, record_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message. ``rowid`` orders rows (acceptance order)."""

    rowid: int
    event_id: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def _pack_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _unpack_headers(raw: bytes) -> list[tuple[str, bytes]]:
    return [(k, v.encode("latin-1")) for k, v in orjson.loads(raw)]


class Outbox:
    """A station's outbox file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                str(path), timeout=0.5, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, not later
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise OutboxLocked(f"outbox {path} is in use by another process") from None
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        row = self._db.execute("SELECT value FROM meta WHERE name='station_seq'").fetchone()
        self._station_seq = int(row[0]) if row else 0
        row = self._db.execute("SELECT max(rowid) FROM outbox").fetchone()
        self._next_rowid = int(row[0] or 0) + 1
        self._versions: dict[tuple[str, str], int] = {}
        logger.info(
            "outbox opened path=%s pending=%d station_seq=%d",
            path,
            self.count(),
            self._station_seq,
        )

    # ---- counters -------------------------------------------------------------------
    @property
    def station_seq(self) -> int:
        """The last ``station_seq`` committed (0 when none)."""
        return self._station_seq

    @property
    def next_rowid(self) -> int:
        """The rowid the next appended row will get."""
        return self._next_rowid

    def version(self, record_type: str, record_id: str) -> int:
        """The last committed ``record_version`` of a record (0 when never written)."""
        k = (record_type, record_id)
        with self._lock:
            v = self._versions.get(k)
            if v is None:
                row = self._db.execute(
                    "SELECT version FROM versions WHERE record_type=? AND record_id=?", k
                ).fetchone()
                v = int(row[0]) if row else 0
                self._versions[k] = v
            return v

    # ---- writing --------------------------------------------------------------------
    def append(
        self,
        topic: str,
        messages: Sequence[tuple[str, KafkaMessage]],
        *,
        station_seq: int | None = None,
        versions: Mapping[tuple[str, str], int] | None = None,
    ) -> list[OutboxRow]:
        """Store ``(event_id, message)`` pairs and the new counters in one transaction
        (committed, and with ``synchronous=FULL`` on disk, when this returns)."""
        with self._lock:
            first = self._next_rowid
            rows = [
                OutboxRow(first + i, eid, topic, m.key, m.value, list(m.headers))
                for i, (eid, m) in enumerate(messages)
            ]
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO outbox (rowid, event_id, topic, key, value, headers) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (r.rowid, r.event_id, topic, r.key, r.value, _pack_headers(r.headers))
                        for r in rows
                    ],
                )
                if station_seq is not None:
                    self._db.execute(
                        "INSERT INTO meta (name, value) VALUES ('station_seq', ?) "
                        "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                        (station_seq,),
                    )
                if versions:
                    self._db.executemany(
                        "INSERT INTO versions (record_type, record_id, version) VALUES (?, ?, ?) "
                        "ON CONFLICT(record_type, record_id) "
                        "DO UPDATE SET version=excluded.version",
                        [(rt, rid, v) for (rt, rid), v in versions.items()],
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"cannot write outbox {self.path}: {exc}") from exc
            self._next_rowid = first + len(rows)
            if station_seq is not None:
                self._station_seq = station_seq
            if versions:
                self._versions.update(versions)
            return rows

    def remove(self, rowids: Iterable[int]) -> None:
        """Delete delivered rows (one transaction)."""
        ids = [(r,) for r in rowids]
        if not ids:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM outbox WHERE rowid=?", ids)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"cannot update outbox {self.path}: {exc}") from exc

    # ---- reading --------------------------------------------------------------------
    def pending(self, *, from_rowid: int = 0, limit: int = 10_000) -> list[OutboxRow]:
        """Stored rows with ``rowid >= from_rowid``, in order."""
        with self._lock:
            cur = self._db.execute(
                "SELECT rowid, event_id, topic, key, value, headers FROM outbox "
                "WHERE rowid >= ? ORDER BY rowid LIMIT ?",
                (from_rowid, limit),
            )
            return [OutboxRow(r[0], r[1], r[2], r[3], r[4], _unpack_headers(r[5])) for r in cur]

    def get(self, rowids: Sequence[int]) -> list[OutboxRow]:
        """The rows with these ids that are still stored, in rowid order."""
        out: list[OutboxRow] = []
        with self._lock:
            for start in range(0, len(rowids), 500):
                chunk = list(rowids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                cur = self._db.execute(
                    "SELECT rowid, event_id, topic, key, value, headers FROM outbox "
                    f"WHERE rowid IN ({marks})",
                    chunk,
                )
                out.extend(
                    OutboxRow(r[0], r[1], r[2], r[3], r[4], _unpack_headers(r[5])) for r in cur
                )
        out.sort(key=lambda r: r.rowid)
        return out

    def count(self) -> int:
        """Rows not yet confirmed by Kafka."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def event_ids(self) -> list[str]:
        """Event ids of the stored rows, in order (for tools and tests)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT event_id FROM outbox ORDER BY rowid")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
