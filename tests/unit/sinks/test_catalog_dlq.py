"""The ``dlq`` view: one row per rejected input, whatever replays wrote to the DLQ topic."""

from __future__ import annotations

from pathlib import Path

from schemas.dlq import dlq_headers
from sinks.catalog import open_catalog
from sinks.encode import encode_dlq
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage

DLQ = "station.changes.dlq"


def _dead_letter(dlq_offset: int, source_offset: int, rejected_at: str) -> FakeMessage:
    headers = dlq_headers(
        [],
        reason="bad_signature",
        message="signature does not verify",
        stage="validate",
        topic="station.changes",
        partition=2,
        offset=source_offset,
        rejected_at=rejected_at,
    )
    return FakeMessage(DLQ, 0, dlq_offset, b"raw", b"k", headers)


def _write(root: Path, msgs: list[FakeMessage]) -> None:
    w = SegmentWriter(store=Store.open(root), topic=DLQ, encoder=encode_dlq)
    w.add(0, msgs)
    w.flush_due(force=True)


def test_a_replayed_rejection_counts_once_and_stays_raw(tmp_path: Path) -> None:
    _write(
        tmp_path,
        [
            _dead_letter(0, 10, "2026-03-10T05:00:00Z"),
            _dead_letter(1, 11, "2026-03-10T05:00:01Z"),
            # the stream worker replayed input 10 and 11 after a crash: new dead letters
            _dead_letter(2, 10, "2026-03-10T05:03:00Z"),
            _dead_letter(3, 11, "2026-03-10T05:03:00Z"),
        ],
    )
    con = open_catalog(tmp_path, "dlq")
    rows = con.execute(
        'SELECT topic, partition, "offset", dlq_offset FROM dlq ORDER BY "offset"'
    ).fetchall()
    assert rows == [("station.changes", 2, 10, 0), ("station.changes", 2, 11, 1)]
    assert con.execute("SELECT count(*) FROM raw.dlq").fetchall() == [(4,)]


def test_dead_letters_without_source_coordinates_count_by_their_own_position(
    tmp_path: Path,
) -> None:
    bare = [FakeMessage(DLQ, 0, i, b"x", None, [("tuyen_reason", b"unknown")]) for i in range(3)]
    _write(tmp_path, [*bare, bare[1]])  # dead letter 1 delivered twice
    con = open_catalog(tmp_path, "dlq")
    assert con.execute("SELECT dlq_offset FROM dlq ORDER BY 1").fetchall() == [(0,), (1,), (2,)]
    assert con.execute("SELECT count(*) FROM raw.dlq").fetchall() == [(4,)]
