"""The durable local outbox: a SQLite database (WAL mode) holding every event a station has
accepted until Kafka confirms it, plus the counters that must survive restarts.

Tables (one database per station client):

- ``outbox(rowid, event_id, topic, key, value, headers)``: encoded messages, in the order
  they were accepted. A row is deleted only after a successful delivery report.
- ``meta(name, value)``: ``station_seq``, the last sequence number handed out.
- ``versions(record_type, record_id, version)``: the last ``record_version`` per record.
- ``digests(record_type, record_id, digest)``: the digest of the after-image last accepted
  for a record, when the caller gave one (importers: re-importing unchanged content
  publishes nothing; ``""`` after a delete).

The event rows and the counters are written in the same transaction, so after a crash the
counters never run behind the events (``station_seq`` and ``record_version`` stay monotonic
across restarts). Pure: no Kafka here (see :mod:`producers.sdk.publisher`).

The connection uses ``locking_mode=EXCLUSIVE``: one process per outbox file. The OS drops
the lock when that process dies, even by ``kill -9``.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Final, NamedTuple

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
CREATE TABLE IF NOT EXISTS digests (
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (record_type, record_id)
) WITHOUT ROWID;
"""


# Page size of new outbox files. Rows are ~0.5 KiB and come and go in batches of thousands:
# bigger pages mean fewer WAL frames per commit and per delete (files created with another
# page size keep it; only speed differs).
_PAGE_SIZE: Final = 16_384


class OutboxRow(NamedTuple):
    """One stored message. ``rowid`` orders rows (acceptance order). A named tuple: the
    outbox makes one per accepted event, so it must be cheap to build."""

    rowid: int
    event_id: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """What one :meth:`Outbox.append` stored, column by column: event ``i`` is the row
    ``first_rowid + i``. The publisher sends these straight from memory; columns (built and
    zipped by C-level iterators) keep Python work per event to a minimum on this hot path."""

    first_rowid: int
    topic: str
    event_ids: tuple[str, ...]
    keys: tuple[bytes | None, ...]
    values: tuple[bytes | None, ...]
    headers: tuple[list[tuple[str, bytes]], ...]

    @classmethod
    def of(
        cls, first_rowid: int, topic: str, messages: Sequence[tuple[str, KafkaMessage]]
    ) -> StoredBatch:
        ms = tuple(map(itemgetter(1), messages))
        return cls(
            first_rowid,
            topic,
            tuple(map(itemgetter(0), messages)),
            tuple(map(attrgetter("key"), ms)),
            tuple(map(attrgetter("value"), ms)),
            tuple(map(attrgetter("headers"), ms)),  # the lists themselves, not copies
        )

    def __len__(self) -> int:
        return len(self.event_ids)

    @property
    def rowids(self) -> range:
        return range(self.first_rowid, self.first_rowid + len(self.event_ids))

    def rows(self) -> list[OutboxRow]:
        """The stored rows, as :meth:`Outbox.pending` would read them back."""
        return list(
            map(
                OutboxRow,
                self.rowids,
                self.event_ids,
                repeat(self.topic),
                self.keys,
                self.values,
                self.headers,
            )
        )


# Headers are stored as a pickle (protocol 5) of the list of ``(name, value)`` pairs: one C
# call per event, about twice as fast as JSON with the values decoded as latin-1, which is
# what outboxes written before kept (still read). Loading never resolves a global (see
# ``_HeaderUnpickler``), so a damaged or planted row cannot run code: at worst it fails.
_PICKLE_PROTOCOL: Final = 5


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # every global is refused
        raise pickle.UnpicklingError(f"outbox headers hold no objects ({module}.{name})")


def _pack_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    return pickle.dumps(headers, _PICKLE_PROTOCOL)  # append() inlines this call


def _unpack_headers(raw: bytes) -> list[tuple[str, bytes]]:
    if raw[:1] == b"[":  # written by an older version: JSON, values as latin-1
        return [(k, v.encode("latin-1")) for k, v in orjson.loads(raw)]
    try:
        headers = [(k, v) for k, v in _HeaderUnpickler(io.BytesIO(raw)).load()]
    except Exception as exc:
        raise OutboxError(f"unreadable headers in the outbox: {exc}") from exc
    if not all(type(k) is str and type(v) is bytes for k, v in headers):
        raise OutboxError("unreadable headers in the outbox: not (str, bytes) pairs")
    return headers


def rowid_ranges(rowids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted runs of consecutive ids as inclusive ``(first, last)`` pairs: ``[1, 2, 3, 7]``
    gives ``[(1, 3), (7, 7)]``. A run only ever covers ids that were given, so an id between
    two given ones (a row still in flight or waiting for a retry) is never inside a range."""
    out: list[tuple[int, int]] = []
    first = last = -2
    for r in sorted(set(rowids)):
        if r != last + 1:
            if last >= 0:
                out.append((first, last))
            first = r
        last = r
    if last >= 0:
        out.append((first, last))
    return out


def _private(path: Path) -> None:
    """Create ``path`` (and so its ``-wal``/``-shm`` companions, which SQLite creates with the
    database file's mode) readable and writable by its owner only: 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        path.chmod(0o600)
        for extra in ("-wal", "-shm"):
            companion = path.with_name(path.name + extra)
            if companion.exists():
                companion.chmod(0o600)
    except OSError as exc:
        raise OutboxError(f"cannot create outbox {path}: {exc}") from exc


class Outbox:
    """A station's outbox file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        _private(path)  # health records wait here: the station's account only
        try:
            self._db = sqlite3.connect(
                str(path), timeout=0.5, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # only applies to a new file
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
        self._digests: dict[tuple[str, str], str | None] = {}
        self.uses_digests = self._db.execute("SELECT 1 FROM digests LIMIT 1").fetchone() is not None
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

    def digest(self, record_type: str, record_id: str) -> str | None:
        """The digest stored with the record's last accepted change (``None``: none given)."""
        k = (record_type, record_id)
        with self._lock:
            if k not in self._digests:  # misses are cached too (records seen the first time)
                row = self._db.execute(
                    "SELECT digest FROM digests WHERE record_type=? AND record_id=?", k
                ).fetchone()
                self._digests[k] = None if row is None else str(row[0])
            return self._digests[k]

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load the versions and digests of many records at once (an importer about to write
        a batch of them): one query per 400 records instead of two per record."""
        with self._lock:
            todo = [k for k in dict.fromkeys(keys) if k not in self._versions]
            for start in range(0, len(todo), 400):
                chunk = todo[start : start + 400]
                marks = ",".join("(?, ?)" for _ in chunk)
                flat = [x for k in chunk for x in k]
                for k in chunk:
                    self._versions[k] = 0
                    self._digests.setdefault(k, None)
                for rt, rid, v in self._db.execute(
                    "SELECT record_type, record_id, version FROM versions "
                    f"WHERE (record_type, record_id) IN (VALUES {marks})",
                    flat,
                ):
                    self._versions[(rt, rid)] = int(v)
                for rt, rid, d in self._db.execute(
                    "SELECT record_type, record_id, digest FROM digests "
                    f"WHERE (record_type, record_id) IN (VALUES {marks})",
                    flat,
                ):
                    self._digests[(rt, rid)] = str(d)

    # ---- writing --------------------------------------------------------------------
    def append(
        self,
        topic: str,
        messages: Sequence[tuple[str, KafkaMessage]],
        *,
        station_seq: int | None = None,
        versions: Mapping[tuple[str, str], int] | None = None,
        digests: Mapping[tuple[str, str], str] | None = None,
    ) -> StoredBatch:
        """Store ``(event_id, message)`` pairs, the new counters and the records' new
        digests in one transaction (committed, and with ``synchronous=FULL`` on disk, when
        this returns)."""
        with self._lock:
            first = self._next_rowid
            batch = StoredBatch.of(first, topic, messages)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(  # zip/map: no Python frame per row, no row object kept
                    "INSERT INTO outbox (rowid, event_id, topic, key, value, headers) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    zip(
                        batch.rowids,
                        batch.event_ids,
                        repeat(topic),
                        batch.keys,
                        batch.values,
                        map(pickle.dumps, batch.headers, repeat(_PICKLE_PROTOCOL)),
                        strict=False,  # repeat() is endless; the columns have one length
                    ),
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
                if digests:
                    self._db.executemany(
                        "INSERT INTO digests (record_type, record_id, digest) VALUES (?, ?, ?) "
                        "ON CONFLICT(record_type, record_id) DO UPDATE SET digest=excluded.digest",
                        [(rt, rid, d) for (rt, rid), d in digests.items()],
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"cannot write outbox {self.path}: {exc}") from exc
            self._next_rowid = first + len(batch)
            if station_seq is not None:
                self._station_seq = station_seq
            if versions:
                self._versions.update(versions)
            if digests:
                self._digests.update(digests)
                self.uses_digests = True
            return batch

    def remove(self, rowids: Iterable[int]) -> None:
        """Delete delivered rows (one transaction; consecutive ids as one range each)."""
        ranges = rowid_ranges(rowids)
        if not ranges:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM outbox WHERE rowid BETWEEN ? AND ?", ranges)
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
