"""Per-record state the validator needs: last version, recent event ids, last contribution.

The stream shell keeps it in a faust Table (changelog-backed, co-partitioned with the raw
topic: the table key is the ``record_id`` and every record's changes arrive on the partition of
its record key). Pure code sees it through :class:`StateStore`: :class:`MemoryState` is the
plain-dict implementation (tests, benchmarks, the ``memory`` state store);
:class:`streams.diskstate.DiskState` keeps it in the table's per-partition RocksDB databases.

Value layout (JSON, compact on purpose, one entry per record)::

    {"v": 3,                      # last accepted record_version
     "d": false,                  # last accepted op was a delete
     "ids": [["<event id>", "<signature prefix>"], ...],   # newest last, at most K
     "c": ["2025-10", [["station","00004"],["district","001"],...], {"encounters.total": 1}]}

``c`` is what the current version contributes to the live aggregates (``None`` after a delete),
so a correction or delete can retract it exactly.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

__all__ = ["MemoryState", "RecordState", "StateStore"]

RecordState = dict[str, Any]


class StateStore(Protocol):
    """Where per-record state lives. ``put`` marks the key dirty for the shell to persist."""

    def get(self, record_id: str, partition: int) -> RecordState | None: ...

    def put(self, record_id: str, state: RecordState, partition: int) -> None: ...

    def drain(self) -> list[tuple[str, bytes, int]]: ...

    def commit(self, changes: list[tuple[str, bytes, int]]) -> None: ...


class MemoryState:
    """A dict-backed :class:`StateStore` that remembers which keys changed since ``drain``.

    Values are kept as compact JSON text (about a quarter of the memory of the nested
    dicts: ~250 bytes per record); the changelog value is that JSON (faust's JSON codec
    restores it as a dict, which :meth:`get` takes as it is; a JSON string, the layout of
    earlier versions, is parsed once more).
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self._dirty: dict[str, int] = {}

    def get(self, record_id: str, partition: int = 0) -> RecordState | None:
        raw = self.data.get(record_id)
        if raw is None or isinstance(raw, dict):
            return raw
        state: RecordState = orjson.loads(raw)
        return state

    def put(self, record_id: str, state: RecordState, partition: int) -> None:
        self.data[record_id] = orjson.dumps(state).decode()
        self._dirty[record_id] = partition

    def drain(self) -> list[tuple[str, bytes, int]]:
        """``(key, changelog value, partition)`` of the keys changed since the last drain."""
        dirty, self._dirty = self._dirty, {}
        data = self.data
        return [(key, data[key].encode(), partition) for key, partition in dirty.items()]

    def commit(self, changes: list[tuple[str, bytes, int]]) -> None:
        """Nothing to do: the dict is the store (the changelog restores it after a crash)."""

    def __len__(self) -> int:
        return len(self.data)
