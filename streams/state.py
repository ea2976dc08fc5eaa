"""Per-record state the validator needs: last version, recent event ids, last contribution.

The stream shell keeps it in a faust Table (changelog-backed, co-partitioned with the raw
topic: the table key is the ``record_id`` and every record's changes arrive on the partition of
its record key). Pure code sees it through :class:`StateStore`; :class:`MemoryState` is the
plain-dict implementation used by tests, benchmarks and as the shell's front.

Value layout (JSON, compact on purpose, one entry per record)::

    {"v": 3,                      # last accepted record_version
     "d": false,                  # last accepted op was a delete
     "ids": [["<event id>", "<signature prefix>"], ...],   # newest last, at most K
     "c": ["2025-10", [["station","00004"],["district","001"],...], {"encounters.total": 1}]}

``c`` is what the current version contributes to the live aggregates (``None`` after a delete),
so a correction or delete can retract it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import orjson

__all__ = ["MemoryState", "RecordState", "StateStore"]

RecordState = dict[str, Any]


class StateStore(Protocol):
    """Where per-record state lives. ``put`` marks the key dirty for the shell to persist."""

    def get(self, record_id: str) -> RecordState | None: ...

    def put(self, record_id: str, state: RecordState, partition: int) -> None: ...


class MemoryState:
    """A dict-backed :class:`StateStore` that remembers which keys changed since ``drain``.

    Values are kept as compact JSON text (about a quarter of the memory of the nested
    dicts: ~250 bytes per record); the same text is the changelog value (a JSON string, so
    faust's JSON codec restores it as text into the same dict).
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self._dirty: dict[str, int] = {}

    def get(self, record_id: str) -> RecordState | None:
        raw = self.data.get(record_id)
        if raw is None or isinstance(raw, dict):
            return raw
        state: RecordState = orjson.loads(raw)
        return state

    def put(self, record_id: str, state: RecordState, partition: int) -> None:
        self.data[record_id] = orjson.dumps(state).decode()
        self._dirty[record_id] = partition

    def drain(self) -> Iterator[tuple[str, Any, int]]:
        """Yield ``(key, stored value, partition)`` changed since the last drain, and forget
        them (the stored value is what the changelog carries)."""
        dirty, self._dirty = self._dirty, {}
        for key, partition in dirty.items():
            yield key, self.data[key], partition

    def __len__(self) -> int:
        return len(self.data)
