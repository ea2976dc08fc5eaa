"""Compaction: merges closed partitions, deduplicates, is idempotent, never changes views."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from sinks.catalog import open_catalog
from sinks.compact import compact
from sinks.config import CompactConfig
from sinks.encode import tier_encoder
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser

TOPIC = "tier.province"
MARCH = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
JULY = datetime(2026, 7, 10, 5, 0, tzinfo=UTC)


def _store(root: Path) -> None:
    w = SegmentWriter(
        store=Store.open(root), topic=TOPIC, encoder=tier_encoder("province"), rotate_rows=5
    )
    msgs = []
    for i in range(23):
        when = MARCH if i % 2 else JULY
        rec = tier_record("immunization", n=i, event_id=f"e{i}", event_time=when)
        msgs.append(FakeMessage.of(TOPIC, 0, i, rec))
    msgs.append(
        FakeMessage.of(
            TOPIC, 0, 23, tier_record("immunization", n=1, event_id="e1", event_time=MARCH)
        )
    )  # duplicate
    w.add(0, msgs)
    w.flush_due(force=True)


def _snapshot(root: Path) -> list[tuple[object, ...]]:
    con = open_catalog(root, "province")
    return con.execute(
        "SELECT event_id, record_id, event_month FROM immunization_changes ORDER BY event_id"
    ).fetchall()


def _config(root: Path) -> CompactConfig:
    return CompactConfig(store_root=str(root), before_month="2026-06", min_file_age_s=0)


def test_compaction_merges_closed_months_only_and_dedupes(tmp_path: Path) -> None:
    _store(tmp_path)
    before = _snapshot(tmp_path)
    march = tmp_path / "province/province=01/record_type=immunization/month=2026-03"
    july = tmp_path / "province/province=01/record_type=immunization/month=2026-07"
    july_files = sorted(p.name for p in july.glob("*.parquet"))
    assert len(list(march.glob("*.parquet"))) == 5

    report = compact(_config(tmp_path))
    assert report.directories == 1 and report.rows_in == 12 and report.rows_out == 11
    [merged] = list(march.glob("*.parquet"))
    assert "+merged+" in merged.name
    assert sorted(p.name for p in july.glob("*.parquet")) == july_files  # open month untouched
    assert _snapshot(tmp_path) == before

    again = compact(_config(tmp_path))  # idempotent
    assert again.directories == 0
    assert [p.name for p in march.glob("*.parquet")] == [merged.name]
    assert _snapshot(tmp_path) == before


def test_young_files_are_left_alone(tmp_path: Path) -> None:
    _store(tmp_path)
    report = compact(CompactConfig(store_root=str(tmp_path), before_month="2026-06"))
    assert report.directories == 0  # all files are younger than the default hour


def test_crash_between_merge_and_removal_is_harmless(tmp_path: Path) -> None:
    _store(tmp_path)
    before = _snapshot(tmp_path)
    march = tmp_path / "province/province=01/record_type=immunization/month=2026-03"
    inputs = {p: p.read_bytes() for p in march.glob("*.parquet")}
    compact(_config(tmp_path))
    for p, data in inputs.items():  # as if the removal never happened
        p.write_bytes(data)
        os.utime(p, (0, 0))
    assert _snapshot(tmp_path) == before  # merged + inputs: views dedupe
    compact(_config(tmp_path))
    assert len(list(march.glob("*.parquet"))) == 1
    assert _snapshot(tmp_path) == before


def test_readers_during_compaction_see_same_rows(tmp_path: Path) -> None:
    _store(tmp_path)
    expected = _snapshot(tmp_path)
    seen: list[list[tuple[object, ...]]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    reading = threading.Event()

    def read() -> None:
        con = open_catalog(tmp_path, "province")
        while not done.is_set() or not seen:
            reading.set()
            try:
                seen.append(
                    con.execute(
                        "SELECT event_id, record_id, event_month FROM immunization_changes "
                        "ORDER BY event_id"
                    ).fetchall()
                )
            except Exception as exc:  # a file removed between glob and open: retry is fine
                if "No such file" not in str(exc) and "not found" not in str(exc).lower():
                    errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    reading.wait(timeout=30)
    try:
        compact(_config(tmp_path))
    finally:
        done.set()
        reader.join()
    assert not errors
    assert seen and all(s == expected for s in seen)


def test_national_tier_compacts(tmp_path: Path) -> None:
    """The national tier's files have no processed_time nor event_time: compaction still
    deduplicates them on event_id, and the views do not change."""
    store = Store.open(tmp_path)
    key = Pseudonymiser("compact-test-key")
    records = [
        national_record(tier_record("immunization", n=i, event_id=f"e{i}").model_dump(), key)
        for i in range(6)
    ]
    encode = tier_encoder("national")
    for part, chunk in enumerate((records[:4], records[2:])):  # e2, e3 twice
        msgs = [
            FakeMessage.of("tier.national", part, i, orjson.dumps(r)) for i, r in enumerate(chunk)
        ]
        for directory, table in encode(msgs).items():
            store.write_table(store.path(directory, f"tier.national+{part}+0.parquet"), table)
    query = "SELECT event_id, record_id FROM immunization_changes ORDER BY event_id"
    before = open_catalog(tmp_path, "national").execute(query).fetchall()
    assert len(before) == 6

    report = compact(_config(tmp_path))
    assert report.directories == 1 and report.rows_in == 8 and report.rows_out == 6
    assert open_catalog(tmp_path, "national").execute(query).fetchall() == before
