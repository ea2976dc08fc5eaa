"""Per-record state on disk: the ``records`` table's RocksDB databases (one per partition,
opened and restored from the changelog by faust's RocksDB store), read and written here
directly. Pure: the databases come in as a function of the partition.

Memory stays flat however many records there are: only the current batch's changes are
held in memory, and RocksDB's block cache and memtables are bounded by configuration.

Order of writes (so the disk is never ahead of what a restarted worker can rebuild):
``put`` keeps a change in memory; :meth:`DiskState.drain` hands the batch's changes to the
shell, which publishes the outputs, then the changelog, and only after both flushes calls
:meth:`DiskState.commit` to write them to the databases. A crash before that loses only
changes the changelog does not have either, and the raw events are then processed again.

Keys and values are the changelog's bytes (the JSON of the record id, the JSON of the state),
which is also what faust's RocksDB store writes when it restores a partition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from streams.state import RecordState

__all__ = ["DiskState", "PartitionDB", "WriteBatch", "batch_writer"]


class PartitionDB(Protocol):
    """The subset of ``rocksdict.Rdict`` (raw mode) used here."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


class WriteBatch(Protocol):
    """The subset of ``rocksdict.WriteBatch`` (raw mode) used here."""

    def put(self, key: bytes, value: bytes) -> None: ...


class DiskState:
    """A :class:`~streams.state.StateStore` over per-partition databases. With ``write``
    (``(partition, puts)`` → those puts written in one RocksDB write batch), :meth:`commit`
    writes each partition's changes of a batch in one call (a third of the cost of a put
    each); without, put by put."""

    def __init__(
        self,
        db_for: Callable[[int], PartitionDB],
        *,
        write: Callable[[int, list[tuple[bytes, bytes]]], None] | None = None,
    ) -> None:
        self._db_for = db_for
        self._write = write
        self._pending: dict[str, tuple[int, RecordState]] = {}
        self._unwritten: dict[str, bytes] = {}

    def get(self, record_id: str, partition: int) -> RecordState | None:
        pending = self._pending.get(record_id)
        if pending is not None:
            return pending[1]
        key = orjson.dumps(record_id)
        raw = self._unwritten.get(record_id) or self._db_for(partition).get(key)
        if raw is None:
            return None
        state: RecordState | str = orjson.loads(raw)
        if isinstance(state, str):  # the changelog layout of earlier versions: JSON in a string
            state = orjson.loads(state)
            assert isinstance(state, dict)
        return state

    def put(self, record_id: str, state: RecordState, partition: int) -> None:
        self._pending[record_id] = (partition, state)

    def drain(self) -> list[tuple[str, bytes, int]]:
        """``(key, changelog value, partition)`` of the changes since the last drain; they stay
        readable here until :meth:`commit`."""
        pending, self._pending = self._pending, {}
        dumps = orjson.dumps
        out = [(key, dumps(state), partition) for key, (partition, state) in pending.items()]
        self._unwritten.update((key, value) for key, value, _ in out)
        return out

    def commit(self, changes: list[tuple[str, bytes, int]]) -> None:
        """Write drained changes to the databases (after the changelog has them)."""
        dumps, unwritten = orjson.dumps, self._unwritten
        if self._write is None:
            for key, value, partition in changes:
                self._db_for(partition).put(dumps(key), value)
        else:
            by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
            for key, value, partition in changes:
                puts = by_partition.get(partition)
                if puts is None:
                    puts = by_partition[partition] = []
                puts.append((dumps(key), value))
            for partition, puts in by_partition.items():
                self._write(partition, puts)
        for key, value, _partition in changes:
            if unwritten.get(key) is value:
                del unwritten[key]

    def __len__(self) -> int:
        """Changes held in memory (not yet written to disk)."""
        return len(self._pending) + len(self._unwritten)


def batch_writer(
    db_for: Callable[[int], Any], new_batch: Callable[[], WriteBatch]
) -> Callable[[int, list[tuple[bytes, bytes]]], None]:
    """``write`` for :class:`DiskState` over databases with ``write(batch)`` (``rocksdict``)."""

    def write(partition: int, puts: list[tuple[bytes, bytes]]) -> None:
        batch = new_batch()
        for key, value in puts:
            batch.put(key, value)
        db_for(partition).write(batch)

    return write
