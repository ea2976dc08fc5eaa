"""How the outbox stores rows: delete ranges, header encoding, files written by older versions."""

from __future__ import annotations

import pickle
import sqlite3
from itertools import pairwise
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.exceptions import OutboxError
from producers.sdk import Outbox
from producers.sdk.outbox import rowid_ranges
from schemas import KafkaMessage


def _msg(i: int) -> tuple[str, KafkaMessage]:
    return f"id-{i}", KafkaMessage(b"k", f"v{i}".encode(), [("ce_id", f"id-{i}".encode())])


@given(st.sets(st.integers(1, 300)))
def test_rowid_ranges_cover_exactly_the_given_ids(ids: set[int]) -> None:
    ranges = rowid_ranges(ids)
    covered = [r for first, last in ranges for r in range(first, last + 1)]
    assert covered == sorted(ids)  # nothing missing, nothing extra (ids between stay)
    assert all(b[0] > a[1] + 1 for a, b in pairwise(ranges))


def test_remove_keeps_rows_between_delivered_ones(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    box.append("t", [_msg(i) for i in range(20)])
    box.remove([9, 1, 2, 3, 10, 11, 15, 20, 3])  # unsorted, repeated, with holes
    kept = [r.rowid for r in box.pending()]
    assert kept == [4, 5, 6, 7, 8, 12, 13, 14, 16, 17, 18, 19]
    box.close()


@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=10))
def test_headers_round_trip_byte_for_byte(headers: list[tuple[str, bytes]]) -> None:
    from producers.sdk.outbox import _pack_headers, _unpack_headers

    assert _unpack_headers(_pack_headers(headers)) == headers


def test_rows_written_by_an_older_version_are_read(tmp_path: Path) -> None:
    """Outboxes written before headers were pickled kept them as JSON (latin-1 values)."""
    path = tmp_path / "old.db"
    Outbox(path).close()  # creates the tables
    headers = [("ce_id", b"old-1"), ("raw", bytes([0, 200, 255]))]
    legacy = orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO outbox (rowid, event_id, topic, key, value, headers) "
            "VALUES (1, 'old-1', 't', ?, ?, ?)",
            (b"k", b"v", legacy),
        )
    db.close()
    box = Outbox(path)
    (row,) = box.pending()
    assert (row.event_id, row.key, row.value, row.headers) == ("old-1", b"k", b"v", headers)
    assert box.append("t", [_msg(2)]).first_rowid == 2
    assert [r.headers for r in box.get([2])] == [_msg(2)[1].headers]
    box.close()


_RAN: list[str] = []


def _planted_code() -> str:
    _RAN.append("planted code ran")
    return "x"


class _Planted:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_planted_code, ())


def test_new_outbox_uses_big_pages(tmp_path: Path) -> None:
    Outbox(tmp_path / "new.db").close()
    with sqlite3.connect(tmp_path / "new.db") as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 16_384
    db.close()


def test_headers_never_load_objects(tmp_path: Path) -> None:
    path = tmp_path / "planted.db"
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO outbox (rowid, event_id, topic, key, value, headers) "
            "VALUES (1, 'x', 't', NULL, NULL, ?)",
            (pickle.dumps([("a", _Planted())]),),
        )
        db.execute(
            "INSERT INTO outbox (rowid, event_id, topic, key, value, headers) "
            "VALUES (2, 'y', 't', NULL, NULL, ?)",
            (pickle.dumps([("a", 5)]),),
        )
    db.close()
    box = Outbox(path)
    for rowid in (1, 2):
        with pytest.raises(OutboxError, match="unreadable headers"):
            box.get([rowid])
    box.close()
    assert _RAN == []
