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


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


#: the level of the parts a sink finds in files when it resumes: never merged again
_UNKNOWN = 1 << 30


@dataclass
class _Segment:
    start: int
    opened_at: float
    next_offset: int
    #: the rows before this offset are in files already (parts, or before a resume)
    written: int
    rows: int = 0
    value_bytes: int = 0
    #: every row of the segment, as (first offset, rows per directory) in offset order
    batches: list[tuple[int, dict[str, pa.Table]]] = field(default_factory=list)
    #: the parts written so far: (first offset, merge level)
    runs: list[tuple[int, int]] = field(default_factory=list)
    fresh_since: float | None = None  # rows from ``written`` on arrived since then
    #: a cut resumed from commit metadata: the next cut ends exactly here
    cut_end: int | None = None
    cut_closing: bool = False
    cut_from: int | None = None

    def tables(self, first: int) -> dict[str, pa.Table]:
        """The rows from offset ``first`` on, one table per directory."""
        by_dir: dict[str, list[pa.Table]] = {}
        for offset, tables in self.batches:
            if offset >= first:
                for directory, table in tables.items():
                    by_dir.setdefault(directory, []).append(table)
        return {d: _concat(t) for d, t in by_dir.items()}


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
    #: a part merges the previous ones when it would be the ``merge_parts``-th of the same
    #: level (an open segment keeps ~``merge_parts`` × log(flushes) parts; each row is
    #: written ~log_merge_parts(flushes) times before the close)
    merge_parts: int = 4
    #: files a flush writes at once (each waits for its fsyncs; the disk takes several)
    write_threads: int = 4
    rows_written: int = 0
    _segments: dict[int, _Segment] = field(default_factory=dict)
    #: where the next segment of a partition starts: (start and cut under way, written up to)
    _starts: dict[int, tuple[SegmentMark, int]] = field(default_factory=dict)
    _order: CutOrder = field(init=False)

    def __post_init__(self) -> None:
        self._order = CutOrder(
            self.topic, lambda c: self.commit(c), self._store_of, self.write_threads
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
        metadata, whose cut under way (if any) is cut again at the same end."""
        self._segments.pop(partition, None)
        written = start if committed is None else max(start, committed)
        cut = mark.cut_end if mark is not None and mark.cut_end is not None else None
        if cut is not None and cut <= written:
            cut = None
        closing = bool(mark is not None and mark.closing and cut is not None)
        cut_from = mark.cut_from if mark is not None and cut is not None else None
        self._starts[partition] = (
            SegmentMark(start, cut, closing=closing, cut_from=cut_from),
            written,
        )

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
                    else self._part_cut(
                        partition,
                        seg,
                        intent=False,
                        first=seg.written if seg.cut_from is None else seg.cut_from,
                    )
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
                runs=[(start, _UNKNOWN)] if written > start else [],
                cut_end=mark.cut_end,
                cut_closing=mark.closing,
                cut_from=mark.cut_from,
            )
            self._segments[partition] = seg
        return seg

    def _append(self, seg: _Segment, chunk: Sequence[MessageLike], *, fresh: bool) -> None:
        seg.batches.append((int(chunk[0].offset() or 0), self.encoder(chunk)))
        if fresh and seg.fresh_since is None:
            seg.fresh_since = self.clock()

    # ---- output ---------------------------------------------------------------------------

    def _part_cut(
        self, partition: int, seg: _Segment, *, intent: bool, first: int | None = None
    ) -> Cut:
        """The rows since ``written`` as a part; merged with the parts before when they
        would make ``merge_parts`` of one level (from ``first``, when resumed)."""
        if first is None:
            first = self._merge(seg)
        end = seg.next_offset
        return Cut(partition, seg.start, first, seg.written, end, False, seg.tables(first), intent)

    def _merge(self, seg: _Segment) -> int:
        """Where the next part starts: at ``written``, or earlier when it merges the last
        ``merge_parts - 1`` parts of one level with it (then again at the next level, like
        a carry in base ``merge_parts``)."""
        runs = list(seg.runs)
        first, level, k = seg.written, 0, self.merge_parts - 1
        while k > 0 and len(runs) >= k and all(lv == level for _, lv in runs[-k:]):
            first = runs[-k][0]
            del runs[-k:]
            level += 1
        return first

    def _close_cut(self, partition: int, seg: _Segment, *, intent: bool) -> Cut:
        tables = seg.tables(seg.start)
        seg.batches = [(seg.start, tables)]
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
                merged = [lv for first, lv in seg.runs if first >= cut.first]
                seg.runs = [r for r in seg.runs if r[0] < cut.first]
                seg.runs.append((cut.first, max(merged) + 1 if merged else 0))
                seg.written = cut.end
                seg.fresh_since = None
            seg.cut_end = seg.cut_from = None
        return [c.done_commit for c in done]

    def flush(self, partition: int) -> list[Commit]:
        """Write the new rows of ``partition``'s open segment now, as a part."""
        seg = self._segments.get(partition)
        if seg is None or seg.fresh_since is None or seg.cut_end is not None:
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
            elif seg.fresh_since is not None and (
                force or now - seg.fresh_since >= self.flush_interval_s
            ):
                cuts.append(self._part_cut(partition, seg, intent=True))
        return self._cut(cuts) if cuts else []
