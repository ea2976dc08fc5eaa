"""A query's snapshot (``sinks.catalog.snapshot``): the change views read merged files as
they are and deduplicate the rest, and give exactly what deduplicating every row gives —
through every state compaction passes through, with late replays into compacted months, and
while compaction runs."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from schemas.tier import TierRecord
from sinks.catalog import open_catalog, snapshot
from sinks.catalog_sql import SNAPSHOT
from sinks.compact import MERGING_MARK, compact
from sinks.config import CompactConfig
from sinks.encode import tier_encoder
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record

TOPIC = "tier.province"
MARCH = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
JULY = datetime(2026, 7, 10, 5, 0, tzinfo=UTC)
MARCH_DIR = "province/province=01/record_type=immunization/month=2026-03"
CHANGES = (
    "SELECT event_id, record_id, event_month, processed_time, record_version "
    "FROM immunization_changes ORDER BY event_id"
)
CURRENT = "SELECT record_id, event_id FROM immunization ORDER BY record_id"


def _record(i: int, when: datetime, *, later: int = 0) -> TierRecord:
    rec = tier_record("immunization", n=i, event_id=f"e{i}", event_time=when)
    return rec.model_copy(update={"processed_time": rec.processed_time + timedelta(hours=later)})


def _store(root: Path) -> None:
    """23 events over March and July in files of 5 rows, e1 twice (the copy an hour later
    in another file)."""
    w = SegmentWriter(
        store=Store.open(root), topic=TOPIC, encoder=tier_encoder("province"), rotate_rows=5
    )
    msgs = [FakeMessage.of(TOPIC, 0, i, _record(i, MARCH if i % 2 else JULY)) for i in range(23)]
    msgs.append(FakeMessage.of(TOPIC, 0, 23, _record(1, MARCH, later=1)))
    w.add(0, msgs)
    w.flush_due(force=True)


def _write(root: Path, name: str, records: list[TierRecord]) -> None:
    store = Store.open(root)
    msgs = [FakeMessage.of(TOPIC, 5, i, r) for i, r in enumerate(records)]
    for directory, table in tier_encoder("province")(msgs).items():
        store.write_table(store.path(directory, name), table)


def _both(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """(changes, current) read with a snapshot, after checking they equal the reads
    without one (every row deduplicated)."""
    con = open_catalog(root, "province")
    exact = con.execute(CHANGES).fetchall(), con.execute(CURRENT).fetchall()
    with snapshot(con):
        fast = con.execute(CHANGES).fetchall(), con.execute(CURRENT).fetchall()
    assert fast == exact
    return fast


def _config(root: Path) -> CompactConfig:
    return CompactConfig(store_root=str(root), before_month="2026-06", min_file_age_s=0)


def test_snapshot_views_are_exact_in_every_state(tmp_path: Path) -> None:
    _store(tmp_path)
    fresh = _both(tmp_path)
    assert len(fresh[0]) == 23
    [e1] = [r for r in fresh[0] if r[0] == "e1"]
    assert e1[3] == _record(1, MARCH).processed_time  # the earlier copy is kept

    compact(_config(tmp_path))  # March: one merged file, read as it is
    assert _both(tmp_path) == fresh

    # late replays into the compacted month: a copy of a merged row processed earlier (it
    # wins), one processed later (the merged copy wins), a new event and a correction
    early = _record(3, MARCH, later=-1)
    _write(
        tmp_path,
        f"{TOPIC}+5+0.parquet",
        [
            early,
            _record(5, MARCH, later=2),
            _record(99, MARCH),
            _record(7, MARCH).model_copy(update={"event_id": "e7v2", "record_version": 2}),
        ],
    )
    late = _both(tmp_path)
    assert len(late[0]) == 25
    assert [r[3] for r in late[0] if r[0] == "e3"] == [early.processed_time]
    assert [r[3] for r in late[0] if r[0] == "e5"] == [_record(5, MARCH).processed_time]
    assert ("e7v2",) in {(r[1],) for r in late[1]}

    compact(_config(tmp_path))  # the merged file and the replay merged again: one file
    march = tmp_path / MARCH_DIR
    assert len(list(march.glob("*.parquet"))) == 1
    assert _both(tmp_path) == late


def test_snapshot_views_are_exact_in_compactions_crash_states(tmp_path: Path) -> None:
    _store(tmp_path)
    march = tmp_path / MARCH_DIR
    inputs = {p: p.read_bytes() for p in march.glob("*.parquet")}
    expected = _both(tmp_path)
    compact(_config(tmp_path))
    [merged] = list(march.glob("*.parquet"))

    merging = merged.with_name(merged.name.replace("+merged+", MERGING_MARK))
    merged.rename(merging)  # a crash between removing the inputs and the rename
    assert _both(tmp_path) == expected
    for p, data in inputs.items():  # a crash between writing and removing the inputs
        p.write_bytes(data)
        os.utime(p, (0, 0))
    assert _both(tmp_path) == expected
    compact(_config(tmp_path))
    assert [p.name for p in march.glob("*.parquet")] != [merging.name]
    assert _both(tmp_path) == expected

    # only the +merging+ file left: the next run finishes the rename, nothing else
    [merged] = list(march.glob("*.parquet"))
    merging = merged.with_name(merged.name.replace("+merged+", MERGING_MARK))
    merged.rename(merging)
    report = compact(_config(tmp_path))
    assert report.rows_in == 0 and [p.name for p in march.glob("*.parquet")] == [merged.name]
    assert _both(tmp_path) == expected


def test_merged_files_are_always_retaken(tmp_path: Path) -> None:
    """A merged file younger than --min-file-age is still an input: a folder never ends up
    with two merged files (they could share rows)."""
    _store(tmp_path)
    expected = _both(tmp_path)
    compact(_config(tmp_path))
    _write(tmp_path, f"{TOPIC}+5+0.parquet", [_record(1, MARCH), _record(3, MARCH)])
    old = tmp_path / MARCH_DIR / f"{TOPIC}+5+0.parquet"
    os.utime(old, (0, 0))
    config = CompactConfig(store_root=str(tmp_path), before_month="2026-06", min_file_age_s=600)
    report = compact(config)
    assert report.files_in == 2
    assert [("+merged+" in p.name) for p in (tmp_path / MARCH_DIR).glob("*.parquet")] == [True]
    assert _both(tmp_path) == expected


def test_readers_with_snapshots_during_compaction_see_same_rows(tmp_path: Path) -> None:
    _store(tmp_path)
    expected = _both(tmp_path)[0]
    seen: list[list[tuple[object, ...]]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    reading = threading.Event()
    con = open_catalog(tmp_path, "province")

    def read() -> None:
        cur = con.cursor()
        while not done.is_set() or len(seen) < 2:
            reading.set()
            try:
                with snapshot(cur):
                    seen.append(cur.execute(CHANGES).fetchall())
            except duckdb.Error as exc:  # a file removed since the listing: retry is fine
                if not any(m in str(exc).lower() for m in ("no such file", "no files found")):
                    errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    reading.wait(timeout=30)
    try:
        for _ in range(3):  # compaction, then replays into the compacted month, again
            compact(_config(tmp_path))
            _write(tmp_path, f"{TOPIC}+6+{len(seen)}.parquet", [_record(1, MARCH)])
    finally:
        done.set()
        reader.join()
    assert not errors
    bad = [sorted(set(s) ^ set(expected)) for s in seen if s != expected]
    assert seen and not bad, (len(seen), bad[:2])


def test_snapshot_is_per_cursor_and_nested_blocks_keep_the_outer_one(tmp_path: Path) -> None:
    _store(tmp_path)
    con = open_catalog(tmp_path, "province")
    unset = f"SELECT getvariable('{SNAPSHOT}') IS NULL"
    with snapshot(con):
        cur = con.cursor()  # another request: none of its own yet
        assert cur.execute(unset).fetchone() == (True,)
        with snapshot(con):
            pass
        assert con.execute(unset).fetchone() == (False,)  # the outer block's still holds
    assert con.execute(unset).fetchone() == (True,)


def test_a_snapshot_cannot_reach_outside_the_root(tmp_path: Path) -> None:
    _store(tmp_path)
    other = tmp_path.parent / f"{tmp_path.name}-other"
    _store(other)
    con = open_catalog(tmp_path, "province")
    [outside] = [str(p) for p in (other / MARCH_DIR).glob("*.parquet")][:1]
    con.execute(f"SET VARIABLE {SNAPSHOT} = {{'immunization': {{'every': ['{outside}']}}}}")
    with pytest.raises(duckdb.Error, match=r"(?i)permission|disabled|not allowed"):
        con.execute("SELECT count(*) FROM raw.immunization").fetchall()
