"""The order that makes a segment's cuts exactly-once: parts while open, one file at close.

A partition's open segment ``S`` (sinks.segments) is made visible in *parts*: its offsets are
cut in blocks from ``S``, and a flush writes each block that received rows, with all the
block's rows read so far, as ``<dir>/<topic>+<partition>+<S>.<block start>.parquet`` in every
directory those rows touch, then commits the offset after them. When the segment closes at
``N`` (rows, bytes or age), all its rows are written as
``<dir>/<topic>+<partition>+<S>.parquet`` and its parts are removed.

The commit metadata (``tuyen-seg=<S>``, with ``;close=<N>`` while a close by age is under
way) is what a restarted or rebalanced sink resumes from: it seeks back to ``S`` (rebuilding
the segment's rows in memory: the rows before the committed offset are already in files), so
it rewrites a block with at least the rows it had (a superset reaches every directory the
earlier write did), and a close by age named in the metadata is made again at the same end.
:class:`CutOrder` runs the steps; see docs/stores.md "Guarantees" for each crash point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from sinks.erasure import ErasedWrites, WriteJob, sync_job_dirs
from sinks.store import Store, file_name, part_name, parts_prefix

__all__ = [
    "Commit",
    "Cut",
    "CutOrder",
    "SegmentMark",
    "parse_segment_metadata",
    "segment_metadata",
]

logger = logging.getLogger(__name__)

_META_PREFIX = "tuyen-seg="


@dataclass(frozen=True, slots=True)
class SegmentMark:
    """What commit metadata says: the open segment's start and, while a close by age is
    under way, its end."""

    start: int
    cut_end: int | None = None
    closing: bool = False


def segment_metadata(start: int, cut_end: int | None = None, *, closing: bool = False) -> str:
    """``tuyen-seg=<S>``; with a close under way ``…;close=<N>``."""
    text = f"{_META_PREFIX}{start}"
    if cut_end is not None and closing:
        text += f";close={cut_end}"
    return text


def parse_segment_metadata(metadata: str | None) -> SegmentMark | None:
    """The :class:`SegmentMark` in commit metadata, or None (absent or not ours)."""
    if not metadata or not metadata.startswith(_META_PREFIX):
        return None
    head, _, rest = metadata[len(_META_PREFIX) :].partition(";")
    if not head.isdigit():
        return None
    key, _, value = rest.partition("=")
    if key == "close" and value.isdigit():
        return SegmentMark(int(head), int(value), closing=True)
    return SegmentMark(int(head))


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit ``offset`` (the next to read) for ``partition``, with the segment start (and a
    close under way, ``cut_end``) as metadata."""

    partition: int
    offset: int
    segment_start: int
    cut_end: int | None = None
    closing: bool = False

    @property
    def metadata(self) -> str:
        return segment_metadata(self.segment_start, self.cut_end, closing=self.closing)


@dataclass(frozen=True)
class Cut:
    """One partition's rows to make durable: the rows ``[first, end)`` of segment ``start``
    as its part ``<start>.<first>`` (a block, with all its rows read so far), or
    (``closing``) the whole segment ``[start, end)``.

    ``written``: the rows before it are in files already (the committed offset).
    ``intent``: commit the cut's end before writing (a close by age: a restarted sink could
    not find its end otherwise); parts, and closes by count or bytes, need none."""

    partition: int
    start: int
    first: int
    written: int
    end: int
    closing: bool
    tables: dict[str, pa.Table]
    intent: bool = True

    def name(self, topic: str) -> str:
        if self.closing:
            return file_name(topic, self.partition, self.start)
        return part_name(topic, self.partition, self.start, self.first)

    @property
    def intent_commit(self) -> Commit:
        return Commit(self.partition, self.written, self.start, self.end, self.closing)

    @property
    def done_commit(self) -> Commit:
        start = self.end if self.closing else self.start
        return Commit(self.partition, self.end, start)


@dataclass
class CutOrder:
    """Makes cuts durable, in the order that gives exactly-once files under a crash anywhere.

    ``commit(commits)`` commits synchronously and says whether the broker took them (a
    failure it may retry later is False, and the commits stay with it, pending); ``store``
    gives the store of a directory. ``threads``: files written at once (each write waits
    for its fsyncs; the disk takes several together). ``erasure``: the erased persons' rows
    are left out of every file, in sinks.erasure.ErasedWrites's order (step 2)."""

    topic: str
    commit: Callable[[Sequence[Commit]], bool]
    store: Callable[[str], Store]
    threads: int = 1
    files_written: int = 0
    bytes_written: int = 0
    parts_removed: int = 0
    erasure: ErasedWrites = field(default_factory=ErasedWrites)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def run(self, cuts: Sequence[Cut]) -> list[Cut]:
        """The cuts made durable (those whose intent the broker did not take are left for
        a later try: their rows stay in memory, nothing of them is written)."""
        done = self.step1_commit_intents(cuts)
        self.step2_write(done)
        for cut in done:
            if cut.closing:
                self.step3_remove_parts(cut)
        if done:
            self.step4_commit_ends(done)
        return done

    def step1_commit_intents(self, cuts: Sequence[Cut]) -> list[Cut]:
        """1. Commit (the committed offset again, ``tuyen-seg=S;close=N``) of every close by
        age: a sink that resumes from it closes the segment at the same end."""
        needing = [c for c in cuts if c.intent]
        if needing and not self.commit([c.intent_commit for c in needing]):
            return [c for c in cuts if not c.intent]
        return list(cuts)

    def step2_write(self, cuts: Sequence[Cut]) -> None:
        """2. Write each cut's file in every directory its rows touch (atomic, durable:
        ``threads`` files at once, then one fsync per directory), without the rows of
        persons in the erasure register (re-read once the files are durable; if it changed,
        the same files are written again: sinks.erasure.ErasedWrites); all are durable when
        this returns."""
        jobs = [
            WriteJob(store, d, store.path(d, c.name(self.topic)), c.tables[d], sync_dir=False)
            for c in cuts
            for d in sorted(c.tables)
            for store in (self.store(d),)
        ]
        sizes = self.erasure.write(jobs, self._run_files)
        self.files_written += len(sizes)
        self.bytes_written += sum(sizes)

    def _run_files(self, write: Callable[[WriteJob], int], jobs: Sequence[WriteJob]) -> list[int]:
        """Each file (temporary name, fsync, rename), ``threads`` at once; then each directory
        they are in once (fsync): all durable when this returns."""
        if self.threads > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sink-write")
            sizes = list(self._pool.map(write, jobs))
            sync_job_dirs(jobs, self._pool.map)
            return sizes
        sizes = [write(job) for job in jobs]
        sync_job_dirs(jobs)
        return sizes

    def step3_remove_parts(self, cut: Cut) -> None:
        """3. (closing) Remove the segment's parts from the directories the segment touches:
        its rows are all in the segment's file now."""
        prefix = parts_prefix(self.topic, cut.partition, cut.start)
        for directory in sorted(cut.tables):
            self.parts_removed += self.store(directory).delete_parts(directory, prefix)

    def step4_commit_ends(self, cuts: Sequence[Cut]) -> None:
        """4. Commit each cut's end (``tuyen-seg=S``; after a close, the next segment's start
        ``N``). A failure leaves them pending with the committer, retried later (a part's
        rows are then rewritten in their block if the sink restarts first)."""
        self.commit([c.done_commit for c in cuts])
