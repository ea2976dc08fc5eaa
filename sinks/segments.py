"""Segments: how a sink turns one Kafka partition's messages into deterministic files.

A *segment* is a run of consecutive offsets of one partition, starting at a position ``S``.
It closes after ``rotate_rows`` messages or ``rotate_bytes`` of values (both counted from
``S``, so the cut points are a pure function of the log), or after ``max_age_s`` (a
wall-clock cut, for slow topics; see "determinism" in docs/stores.md). When it closes, every
row of the segment lands in ``<dir>/<topic>+<partition>+<S>.parquet``, one file per store
directory (hive partition: province, record type, event month) the segment touches.

While a segment is open, a flush (every ``flush_interval_s``, for freshness) writes the rows
received since the previous flush as *parts*: the segment's offsets are cut in blocks of
``part_rows`` offsets from ``S``, and a block's rows read so far go to
``<dir>/<topic>+<partition>+<S>.<block start>.parquet``. A flush rewrites only the blocks
that received rows (the one being filled, from its start), so its cost is bounded by the
block, not the segment; the names are a function of the log, so a replay or a restarted sink
rewrites the same parts, each with at least the rows it had. The close writes the whole
segment from the rows kept in memory and removes its parts. The order of commits, writes and
removals is :class:`sinks.parts.CutOrder`'s: a crash at any point rewrites the same files
(nothing missing, nothing twice once the sink has caught up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from sinks.encode import Encoder, MessageLike
from sinks.erasure import ErasedWrites
from sinks.parts import Commit, Cut, CutOrder, SegmentMark, parse_segment_metadata
from sinks.parts import segment_metadata as segment_metadata
from sinks.store import Store

__all__ = ["Commit", "SegmentWriter", "parse_segment_metadata", "segment_metadata"]

logger = logging.getLogger(__name__)


def _accept(_commits: Sequence[Commit]) -> bool:
    return True


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table, its columns in one chunk each: Parquet writes a column chunk by chunk, and
    a block gathered from a few rows per ``consume()`` writes ~2x faster combined."""
    return pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]


@dataclass
class _Segment:
    start: int
    opened_at: float
    next_offset: int
    #: the rows before this offset are in files already (parts, or before a resume)
    written: int
    rows: int = 0
    value_bytes: int = 0
    #: every row of the segment, as (first offset, rows per directory) in offset order; a
    #: batch never spans two blocks
    batches: list[tuple[int, dict[str, pa.Table]]] = field(default_factory=list)
    fresh_since: float | None = None  # rows from ``written`` on arrived since then
    #: a close by age resumed from commit metadata: the segment closes exactly here
    close_at: int | None = None

    def tables(self, first: int, end: int | None = None) -> dict[str, pa.Table]:
        """The rows of offsets ``first`` to ``end`` (excluded), one table per directory."""
        by_dir: dict[str, list[pa.Table]] = {}
        for offset, tables in self.batches:
            if offset >= first and (end is None or offset < end):
                for directory, table in tables.items():
                    by_dir.setdefault(directory, []).append(table)
        return {d: _concat(t) for d, t in by_dir.items()}

    def gather(self, first: int, end: int, tables: dict[str, pa.Table]) -> None:
        """Keep ``tables`` (the rows of offsets ``first`` to ``end``, a whole block's so far)
        as one batch in place of the batches they came from: the block's next flush (or the
        close) starts from them instead of gathering every batch again."""
        kept = [b for b in self.batches if not first <= b[0] < end]
        at = next((i for i, b in enumerate(kept) if b[0] >= end), len(kept))
        kept.insert(at, (first, tables))
        self.batches = kept


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
    #: a trickle is flushed sooner: a partition's new rows are written once the oldest has
    #: waited this long while fewer than ``fresh_flush_rows`` wait (None: never sooner than
    #: ``flush_interval_s``). Many rows at once (the worker's full batches, a backlog) wait
    #: for ``flush_interval_s``: a flush costs per file, not per row.
    fresh_flush_s: float | None = None
    fresh_flush_rows: int = 128
    clock: Callable[[], float] = time.monotonic
    commit: Callable[[Sequence[Commit]], bool] = _accept
    #: offsets per part (block) of an open segment: a flush rewrites the block being filled
    #: (up to this many rows), an open segment is up to rows / ``part_rows`` parts per
    #: directory it touches
    part_rows: int = 4096
    #: files a flush writes at once (each waits for its fsyncs; the disk takes several)
    write_threads: int = 4
    #: the erasure register's filter (sinks.erasure): its keyed hash, the registers read
    erasure: ErasedWrites = field(default_factory=ErasedWrites)
    rows_written: int = 0
    _segments: dict[int, _Segment] = field(default_factory=dict)
    #: where the next segment of a partition starts: (start and cut under way, written up to)
    _starts: dict[int, tuple[SegmentMark, int]] = field(default_factory=dict)
    _order: CutOrder = field(init=False)

    def __post_init__(self) -> None:
        self._order = CutOrder(
            self.topic,
            lambda c: self.commit(c),
            self._store_of,
            self.write_threads,
            erasure=self.erasure,
        )

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
        metadata, whose close under way (if any) is made again at the same end."""
        self._segments.pop(partition, None)
        written = start if committed is None else max(start, committed)
        close = mark.cut_end if mark is not None and mark.closing else None
        if close is not None and close <= written:
            close = None
        self._starts[partition] = (SegmentMark(start, close, closing=close is not None), written)

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (revoked): its uncommitted rows are rebuilt by the next owner."""
        self._segments.pop(partition, None)
        self._starts.pop(partition, None)

    @property
    def partitions(self) -> list[int]:
        return sorted(set(self._segments) | set(self._starts))

    # ---- input ----------------------------------------------------------------------------

    def add(self, partition: int, messages: Sequence[MessageLike]) -> list[Commit]:
        """Take ``messages`` of one partition (offset order); the commits of segments closed
        (by count or bytes, or a close resumed from commit metadata)."""
        commits: list[Commit] = []
        i = 0
        while i < len(messages):
            seg = self._segment(partition, messages[i])
            first = int(messages[i].offset() or 0)
            old, block = first < seg.written, self._block(seg, first)
            j = i
            while j < len(messages):
                offset = int(messages[j].offset() or 0)
                if j > i and ((offset < seg.written) != old or self._block(seg, offset) != block):
                    break  # a batch is all in files already or all fresh, and in one block
                seg.rows += 1
                seg.value_bytes += len(messages[j].value() or b"")
                j += 1
                if self._full(seg) or (seg.close_at is not None and offset + 1 >= seg.close_at):
                    break
            chunk = messages[i:j]
            self._append(seg, chunk, fresh=not old)
            seg.next_offset = int(chunk[-1].offset() or 0) + 1
            i = j
            if self._full(seg) or (seg.close_at is not None and seg.next_offset >= seg.close_at):
                # by count or bytes, or the close by age a crashed sink had begun: no intent
                commits += self._cut([self._close_cut(partition, seg, intent=False)])
        return commits

    def _block(self, seg: _Segment, offset: int) -> int:
        """The first offset of the block (part) that ``offset`` belongs to."""
        return seg.start + (offset - seg.start) // self.part_rows * self.part_rows

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
                close_at=mark.cut_end if mark.closing else None,
            )
            self._segments[partition] = seg
        return seg

    def _append(self, seg: _Segment, chunk: Sequence[MessageLike], *, fresh: bool) -> None:
        seg.batches.append((int(chunk[0].offset() or 0), self.encoder(chunk)))
        if fresh and seg.fresh_since is None:
            seg.fresh_since = self.clock()

    # ---- output ---------------------------------------------------------------------------

    def _part_cuts(self, partition: int, seg: _Segment) -> list[Cut]:
        """The blocks with rows from ``written`` on, each with all its rows read so far."""
        cuts = []
        block = self._block(seg, seg.written)
        while block < seg.next_offset:
            end = min(block + self.part_rows, seg.next_offset)
            tables = seg.tables(block, end)
            if tables:
                seg.gather(block, end, tables)
                cuts.append(
                    Cut(partition, seg.start, block, seg.written, end, False, tables, False)
                )
            block += self.part_rows
        return cuts

    def _close_cut(self, partition: int, seg: _Segment, *, intent: bool) -> Cut:
        tables = seg.tables(seg.start)
        return Cut(
            partition, seg.start, seg.start, seg.written, seg.next_offset, True, tables, intent
        )

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
                seg.written = max(seg.written, cut.end)
                seg.fresh_since = None
        return [c.done_commit for c in done]

    def flush(self, partition: int) -> list[Commit]:
        """Write the new rows of ``partition``'s open segment now (their blocks)."""
        seg = self._segments.get(partition)
        if seg is None or seg.fresh_since is None:
            return []
        return self._cut(self._part_cuts(partition, seg))

    def due_in(self) -> float | None:
        """Seconds until :meth:`flush_due` has something to do (0 when it has now; None when
        nothing waits): the sink's ``consume()`` waits no longer than this, so a flush is
        made when it is due, not up to a poll timeout later."""
        now = self.clock()
        soonest: float | None = None
        for seg in self._segments.values():
            if seg.close_at is not None:
                continue  # made in ``add``
            due = [seg.opened_at + self.max_age_s] if seg.next_offset >= seg.written else []
            if seg.fresh_since is not None:
                due.append(seg.fresh_since + self._flush_after(seg))
            if due and (soonest is None or min(due) < soonest):
                soonest = min(due)
        return None if soonest is None else max(0.0, soonest - now)

    def _flush_after(self, seg: _Segment) -> float:
        """How long ``seg``'s oldest new row waits for a flush: ``fresh_flush_s`` while fewer
        than ``fresh_flush_rows`` wait, else ``flush_interval_s``."""
        if self.fresh_flush_s is None or seg.next_offset - seg.written >= self.fresh_flush_rows:
            return self.flush_interval_s
        return min(self.fresh_flush_s, self.flush_interval_s)

    def flush_due(self, *, force: bool = False) -> list[Commit]:
        """Close segments past ``max_age_s``; write the blocks of those whose oldest new row
        has waited long enough (``_flush_after``; all with new rows if ``force``)."""
        now = self.clock()
        cuts: list[Cut] = []
        for partition in sorted(self._segments):
            seg = self._segments[partition]
            if seg.close_at is not None:
                continue  # a resumed close is made in ``add``, at its end
            if now - seg.opened_at >= self.max_age_s and seg.next_offset >= seg.written:
                # (a rebuilt segment closes only once it holds every row already in files:
                # its close removes the parts of every directory those rows touch)
                cuts.append(self._close_cut(partition, seg, intent=True))
            elif seg.fresh_since is not None and (
                force or now - seg.fresh_since >= self._flush_after(seg)
            ):
                cuts += self._part_cuts(partition, seg)
        return self._cut(cuts) if cuts else []
