"""Segments: how a sink turns one Kafka partition's messages into deterministic files.

A *segment* is a run of consecutive offsets of one partition, starting at a position ``S``.
It closes after ``rotate_rows`` messages or ``rotate_bytes`` of values (both counted from
``S``, so the cut points are a pure function of the log), or after ``max_age_s`` (a
wall-clock cut, for slow topics; see "determinism" in docs/stores.md). When it closes, every
row of the segment lands in ``<dir>/<topic>+<partition>+<S>.parquet``, one file per store
directory (hive partition: province, record type, event month) the segment touches.

While a segment is open, a flush (every ``flush_interval_s``, for freshness) writes only the
rows received since the previous flush, ``[P, E)``, as *parts*
``<dir>/<topic>+<partition>+<S>.<P>.parquet``, and commits ``E``; the close writes the whole
segment from the rows kept in memory and removes the parts. The order of commits, writes and
removals, and what a restarted sink does with the commit metadata, is
:class:`sinks.parts.CutOrder`'s: a crash at any point rewrites the same files with the same
rows (nothing missing, nothing twice). A replay of the same range from the same position
closes the same segments under the same names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from sinks.encode import Encoder, MessageLike
from sinks.parts import Commit, Cut, CutOrder, SegmentMark, parse_segment_metadata
from sinks.parts import segment_metadata as segment_metadata
from sinks.store import Store

__all__ = ["Commit", "SegmentWriter", "parse_segment_metadata", "segment_metadata"]

logger = logging.getLogger(__name__)


def _accept(_commits: Sequence[Commit]) -> bool:
    return True


@dataclass
class _Segment:
    start: int
    opened_at: float
    next_offset: int
    #: the rows before this offset are in files already (parts, or before a resume)
    written: int
    rows: int = 0
    value_bytes: int = 0
    #: every row of the segment, per directory (what the close writes)
    chunks: dict[str, list[pa.Table]] = field(default_factory=dict)
    #: the rows from ``written`` on, per directory (the next part)
    fresh: dict[str, list[pa.Table]] = field(default_factory=dict)
    fresh_since: float | None = None
    #: a cut resumed from commit metadata: the next cut ends exactly here
    cut_end: int | None = None
    cut_closing: bool = False


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


@dataclass
class SegmentWriter:
    """Segments of every partition a sink owns: ``add`` and ``flush_due`` make rows durable
    and commit them through ``commit`` (synchronous; False when the broker did not take
    them and they stay pending with it). Both return the commits made after files."""

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
    commit: Callable[[Sequence[Commit]], bool] = _accept
    rows_written: int = 0
    _segments: dict[int, _Segment] = field(default_factory=dict)
    #: where the next segment of a partition starts: (start and cut under way, written up to)
    _starts: dict[int, tuple[SegmentMark, int]] = field(default_factory=dict)
    _order: CutOrder = field(init=False)

    def __post_init__(self) -> None:
        self._order = CutOrder(self.topic, lambda c: self.commit(c), self._store_of)

    def _store_of(self, directory: str) -> Store:
        return self.route(directory) if self.route is not None else self.store

    @property
    def files_written(self) -> int:
        return self._order.files_written

    @property
    def bytes_written(self) -> int:
        return self._order.bytes_written

    @property
    def parts_removed(self) -> int:
        return self._order.parts_removed

    # ---- partition ownership --------------------------------------------------------------

    def resume(
        self,
        partition: int,
        start: int,
        committed: int | None = None,
        mark: SegmentMark | None = None,
    ) -> None:
        """The next message of ``partition`` will be read from ``start``: open a segment
        there. ``committed``: the rows before it are in files already; ``mark``: the commit
        metadata, whose cut under way (if any) is cut again at the same end."""
        self._segments.pop(partition, None)
        written = start if committed is None else max(start, committed)
        cut = mark.cut_end if mark is not None and mark.cut_end is not None else None
        if cut is not None and cut <= written:
            cut = None
        closing = bool(mark is not None and mark.closing and cut is not None)
        self._starts[partition] = (SegmentMark(start, cut, closing=closing), written)

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (revoked): its uncommitted rows are rebuilt by the next owner."""
        self._segments.pop(partition, None)
        self._starts.pop(partition, None)

    @property
    def partitions(self) -> list[int]:
        return sorted(set(self._segments) | set(self._starts))

    # ---- input ----------------------------------------------------------------------------

    def add(self, partition: int, messages: Sequence[MessageLike]) -> list[Commit]:
        """Take ``messages`` of one partition (offset order); the commits of cuts made (a
        segment closed by count or bytes, a part resumed from commit metadata)."""
        commits: list[Commit] = []
        i = 0
        while i < len(messages):
            seg = self._segment(partition, messages[i])
            old = int(messages[i].offset() or 0) < seg.written
            j = i
            while j < len(messages):
                msg = messages[j]
                offset = int(msg.offset() or 0)
                if j > i and (offset < seg.written) != old:
                    break  # a chunk is all in files already, or all fresh
                seg.rows += 1
                seg.value_bytes += len(msg.value() or b"")
                j += 1
                if self._full(seg) or (seg.cut_end is not None and offset + 1 >= seg.cut_end):
                    break
            chunk = messages[i:j]
            self._append(seg, chunk, fresh=not old)
            seg.next_offset = int(chunk[-1].offset() or 0) + 1
            i = j
            if self._full(seg):
                commits += self._cut([self._close_cut(partition, seg, intent=False)])
            elif seg.cut_end is not None and seg.next_offset >= seg.cut_end:
                # the cut a crashed sink had begun: the same rows, the same end, no new intent
                cut = (
                    self._close_cut(partition, seg, intent=False)
                    if seg.cut_closing
                    else self._part_cut(partition, seg, intent=False)
                )
                commits += self._cut([cut])
        return commits

    def _full(self, seg: _Segment) -> bool:
        return seg.rows >= self.rotate_rows or seg.value_bytes >= self.rotate_bytes

    def _segment(self, partition: int, first: MessageLike) -> _Segment:
        seg = self._segments.get(partition)
        if seg is None:
            offset = int(first.offset() or 0)
            mark, written = self._starts.pop(partition, (SegmentMark(offset), offset))
            start = min(mark.start, offset)
            written = max(written, start)
            seg = _Segment(
                start=start,
                opened_at=self.clock(),
                next_offset=start,
                written=written,
                cut_end=mark.cut_end,
                cut_closing=mark.closing,
            )
            self._segments[partition] = seg
        return seg

    def _append(self, seg: _Segment, chunk: Sequence[MessageLike], *, fresh: bool) -> None:
        for directory, table in self.encoder(chunk).items():
            seg.chunks.setdefault(directory, []).append(table)
            if fresh:
                seg.fresh.setdefault(directory, []).append(table)
        if fresh and seg.fresh_since is None:
            seg.fresh_since = self.clock()

    # ---- output ---------------------------------------------------------------------------

    def _part_cut(self, partition: int, seg: _Segment, *, intent: bool) -> Cut:
        tables = {d: _concat(t) for d, t in seg.fresh.items()}
        return Cut(partition, seg.start, seg.written, seg.next_offset, False, tables, intent)

    def _close_cut(self, partition: int, seg: _Segment, *, intent: bool) -> Cut:
        tables = {}
        for directory, chunks in seg.chunks.items():
            tables[directory] = _concat(chunks)
            seg.chunks[directory] = [tables[directory]]
        return Cut(partition, seg.start, seg.written, seg.next_offset, True, tables, intent)

    def _cut(self, cuts: list[Cut]) -> list[Commit]:
        """Make ``cuts`` durable (sinks.parts.CutOrder) and move the segments past them."""
        done = self._order.run(cuts)
        for cut in done:
            seg = self._segments[cut.partition]
            if cut.closing:
                del self._segments[cut.partition]
                self.rows_written += seg.rows
                self._starts[cut.partition] = (SegmentMark(cut.end), cut.end)
                logger.debug(
                    "segment closed topic=%s partition=%d start=%d next=%d rows=%d",
                    self.topic,
                    cut.partition,
                    seg.start,
                    cut.end,
                    seg.rows,
                )
            else:
                seg.written = cut.end
                seg.fresh.clear()
                seg.fresh_since = None
            seg.cut_end = None
        return [c.done_commit for c in done]

    def flush(self, partition: int) -> list[Commit]:
        """Write the new rows of ``partition``'s open segment now, as a part."""
        seg = self._segments.get(partition)
        if seg is None or not seg.fresh or seg.cut_end is not None:
            return []
        return self._cut([self._part_cut(partition, seg, intent=True)])

    def flush_due(self, *, force: bool = False) -> list[Commit]:
        """Close segments past ``max_age_s``; write a part of those with rows waiting for
        ``flush_interval_s`` (all with new rows if ``force``)."""
        now = self.clock()
        cuts = []
        for partition in sorted(self._segments):
            seg = self._segments[partition]
            if seg.cut_end is not None:
                continue  # a resumed cut is made in ``add``, at its end
            if now - seg.opened_at >= self.max_age_s and seg.next_offset >= seg.written:
                # (a rebuilt segment closes only once it holds every row already in files:
                # its close removes the parts of every directory those rows touch)
                cuts.append(self._close_cut(partition, seg, intent=True))
            elif seg.fresh and (
                force
                or (seg.fresh_since is not None and now - seg.fresh_since >= self.flush_interval_s)
            ):
                cuts.append(self._part_cut(partition, seg, intent=True))
        return self._cut(cuts) if cuts else []
