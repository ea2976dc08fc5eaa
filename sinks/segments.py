"""Segments: how a sink turns one Kafka partition's messages into deterministic files.

A *segment* is a run of consecutive offsets of one partition, starting at a position ``S``.
It closes after ``rotate_rows`` messages or ``rotate_bytes`` of values (both counted from
``S``, so the cut points are a pure function of the log), or after ``max_age_s`` (a
wall-clock cut, for slow topics; see "determinism" in docs/stores.md). Every row of the
segment lands in ``<dir>/<topic>+<partition>+<S>.parquet``, one file per store directory
(hive partition: province, record type, event month) the segment touches.

While a segment is open, a flush (every ``flush_interval_s``, for freshness) rewrites the
files of the directories that received rows with *all* the segment's rows so far (same name,
atomic replace), then the offset after the last row is committed with metadata ``seg=<S>``.
A restarted or rebalanced sink seeks back to ``S`` and rebuilds the segment, so a crash at
any point rewrites the same files with the same rows: nothing missing, nothing twice. A
replay of the same range from the same position does the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from sinks.encode import Encoder, MessageLike
from sinks.store import Store, file_name

__all__ = ["Commit", "SegmentWriter", "parse_segment_metadata", "segment_metadata"]

logger = logging.getLogger(__name__)

_META_PREFIX = "tuyen-seg="


def segment_metadata(start: int) -> str:
    """The commit metadata naming the open segment's start."""
    return f"{_META_PREFIX}{start}"


def parse_segment_metadata(metadata: str | None) -> int | None:
    """The segment start in commit metadata, or None."""
    if metadata and metadata.startswith(_META_PREFIX):
        text = metadata[len(_META_PREFIX) :]
        if text.isdigit():
            return int(text)
    return None


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit ``offset`` (the next to read) for ``partition`` with ``segment_metadata(start)``."""

    partition: int
    offset: int
    segment_start: int


@dataclass
class _Segment:
    start: int
    opened_at: float
    next_offset: int
    rows: int = 0
    value_bytes: int = 0
    chunks: dict[str, list[pa.Table]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    dirty_since: float | None = None


@dataclass
class SegmentWriter:
    """Segments of every partition a sink owns; ``add`` and ``flush_due`` say what to commit."""

    store: Store
    topic: str
    encoder: Encoder
    #: the store of a directory when not ``store`` (rows routed to their owner's root)
    route: Callable[[str], Store] | None = None
    rotate_rows: int = 100_000
    rotate_bytes: int = 16 * 1024 * 1024
    max_age_s: float = 300.0
    flush_interval_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    rows_written: int = 0
    files_written: int = 0
    bytes_written: int = 0
    _segments: dict[int, _Segment] = field(default_factory=dict)
    _starts: dict[int, int] = field(default_factory=dict)

    # ---- partition ownership --------------------------------------------------------------

    def resume(self, partition: int, start: int) -> None:
        """The next message of ``partition`` will be read from ``start``: open a segment there."""
        self._segments.pop(partition, None)
        self._starts[partition] = start

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (revoked): its uncommitted rows are rebuilt by the next owner."""
        self._segments.pop(partition, None)
        self._starts.pop(partition, None)

    @property
    def partitions(self) -> list[int]:
        return sorted(set(self._segments) | set(self._starts))

    # ---- input ----------------------------------------------------------------------------

    def add(self, partition: int, messages: Sequence[MessageLike]) -> list[Commit]:
        """Take ``messages`` of one partition (offset order); commits of segments that closed."""
        commits: list[Commit] = []
        i = 0
        while i < len(messages):
            seg = self._segment(partition, messages[i])
            j = i
            while j < len(messages):
                msg = messages[j]
                seg.rows += 1
                seg.value_bytes += len(msg.value() or b"")
                j += 1
                if seg.rows >= self.rotate_rows or seg.value_bytes >= self.rotate_bytes:
                    break
            chunk = messages[i:j]
            self._append(seg, chunk)
            seg.next_offset = int(chunk[-1].offset() or 0) + 1
            i = j
            if seg.rows >= self.rotate_rows or seg.value_bytes >= self.rotate_bytes:
                commits.append(self._close(partition))
        return commits

    def _segment(self, partition: int, first: MessageLike) -> _Segment:
        seg = self._segments.get(partition)
        if seg is None:
            offset = int(first.offset() or 0)
            start = self._starts.pop(partition, offset)
            start = min(start, offset)
            seg = _Segment(start=start, opened_at=self.clock(), next_offset=start)
            self._segments[partition] = seg
        return seg

    def _append(self, seg: _Segment, chunk: Sequence[MessageLike]) -> None:
        for directory, table in self.encoder(chunk).items():
            seg.chunks.setdefault(directory, []).append(table)
            seg.dirty.add(directory)
        if seg.dirty_since is None:
            seg.dirty_since = self.clock()

    # ---- output ---------------------------------------------------------------------------

    def _write(self, partition: int, seg: _Segment) -> None:
        name = file_name(self.topic, partition, seg.start)
        for directory in sorted(seg.dirty):
            tables = seg.chunks[directory]
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            if len(tables) > 1:
                seg.chunks[directory] = [table]
            store = self.route(directory) if self.route is not None else self.store
            self.bytes_written += store.write_table(store.path(directory, name), table)
            self.files_written += 1
        seg.dirty.clear()
        seg.dirty_since = None

    def _close(self, partition: int) -> Commit:
        seg = self._segments.pop(partition)
        self._write(partition, seg)
        self.rows_written += seg.rows
        self._starts[partition] = seg.next_offset
        logger.debug(
            "segment closed topic=%s partition=%d start=%d next=%d rows=%d",
            self.topic,
            partition,
            seg.start,
            seg.next_offset,
            seg.rows,
        )
        return Commit(partition, seg.next_offset, seg.next_offset)

    def flush(self, partition: int) -> Commit | None:
        """Write the open segment of ``partition`` now (if it has new rows)."""
        seg = self._segments.get(partition)
        if seg is None or not seg.dirty:
            return None
        self._write(partition, seg)
        return Commit(partition, seg.next_offset, seg.start)

    def flush_due(self, *, force: bool = False) -> list[Commit]:
        """Close segments past ``max_age_s``; flush those dirty for ``flush_interval_s``."""
        now = self.clock()
        commits = []
        for partition in sorted(self._segments):
            seg = self._segments[partition]
            if now - seg.opened_at >= self.max_age_s:
                commits.append(self._close(partition))
            elif seg.dirty and (
                force
                or (seg.dirty_since is not None and now - seg.dirty_since >= self.flush_interval_s)
            ):
                commit = self.flush(partition)
                if commit is not None:
                    commits.append(commit)
        return commits
