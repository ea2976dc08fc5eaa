"""The segment writer alone, as a sink at a steady rate feeds it: run by path.

``python benchmarks/segment_feed.py ROWS BATCH FLUSH_EVERY`` (with a checkout's directory
first on ``PYTHONPATH`` to measure that checkout's writer): ``ROWS`` tier rows over six
partitions and 60 directories (two provinces, five record types, two months), added
``BATCH`` rows per partition at a time, a flush every ``FLUSH_EVERY`` rows (the segments stay
open, as they do for up to five minutes). Prints one JSON line: CPU µs per row (the
process, its threads included), wall seconds, files written, files at rest.

Written to run against older checkouts too: it uses only ``SegmentWriter``'s constructor
arguments, ``add`` and ``flush_due``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sinks.encode import tier_encoder
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record

PARTITIONS = 6
RECORD_TYPES = ("encounter", "person", "immunization", "birth", "death")


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def main(rows: int, batch: int, flush_every: int) -> dict[str, float]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    msgs: dict[int, list[FakeMessage]] = {p: [] for p in range(PARTITIONS)}
    for i in range(rows):
        p = i % PARTITIONS
        rec = tier_record(
            RECORD_TYPES[i % len(RECORD_TYPES)],
            n=i,
            event_id=f"e{i}",
            province="01" if i % 2 else "79",
            event_time=start + timedelta(days=(i * 7) % 60),
        )
        msgs[p].append(FakeMessage.of("t", p, len(msgs[p]), rec))
    root = tempfile.mkdtemp(prefix="segment-feed-")
    try:
        clock = _Clock()
        writer = SegmentWriter(
            store=Store.open(root), topic="t", encoder=tier_encoder("province"), clock=clock
        )
        cpu0, wall0 = time.process_time(), time.perf_counter()
        fed = 0
        for at in range(0, rows // PARTITIONS, batch):
            for p in range(PARTITIONS):
                writer.add(p, msgs[p][at : at + batch])
            fed += batch * PARTITIONS
            if fed % flush_every < batch * PARTITIONS:
                clock.now += 1.0
                writer.flush_due(force=True)
        writer.flush_due(force=True)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        at_rest = sum(len(files) for _, _, files in os.walk(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "cpu_us_per_row": cpu / rows * 1e6,
        "wall_s": wall,
        "files_written": writer.files_written,
        "files_at_rest": at_rest,
    }


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:4]))))
