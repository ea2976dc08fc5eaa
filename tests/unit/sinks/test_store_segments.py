"""Segment files, determinism under crash and replay, schema evolution, catalog rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.dlq import dlq_headers
from sinks.catalog import open_catalog
from sinks.encode import encode_aggregates, encode_dlq, tier_encoder
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record

TOPIC = "tier.province"
T0 = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)


def _writer(root: Path | str, **kw: object) -> SegmentWriter:
    return SegmentWriter(
        store=Store.open(root),
        topic=TOPIC,
        encoder=tier_encoder("province"),
        **kw,  # type: ignore[arg-type]
    )


def _messages(n: int, partition: int = 0, start: int = 0) -> list[FakeMessage]:
    return [
        FakeMessage.of(TOPIC, partition, start + i, tier_record("encounter", n=i, event_id=f"e{i}"))
        for i in range(n)
    ]


def _files(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): pq.read_metadata(p).num_rows
        for p in sorted(root.rglob("*.parquet"))
    }


def _feed(w: SegmentWriter, msgs: Sequence[FakeMessage], batch: int) -> None:
    for i in range(0, len(msgs), batch):
        w.add(0, msgs[i : i + batch])
        w.flush_due(force=True)


def test_rotation_by_count_names_files_by_segment_start(tmp_path: Path) -> None:
    w = _writer(tmp_path, rotate_rows=10)
    _feed(w, _messages(25), batch=7)
    names = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert names == [  # two closed segments, the open one in its first part (block)
        f"{TOPIC}+0+0.parquet",
        f"{TOPIC}+0+10.parquet",
        f"{TOPIC}+0+20.20.parquet",
    ]
    assert sum(_files(tmp_path).values()) == 25


@settings(max_examples=15, deadline=None)
@given(
    batch=st.integers(1, 9),
    crash_after=st.integers(0, 40),
    rotate=st.integers(3, 15),
    second_batch=st.integers(1, 9),
)
def test_crash_anywhere_then_resume_rewrites_same_files(
    tmp_path_factory: object, batch: int, crash_after: int, rotate: int, second_batch: int
) -> None:
    """A sink killed after any flush, resumed from its last commit (seeking back to the
    segment start), ends with exactly the files and rows of an uninterrupted run."""
    base = Path(tmp_path_factory.mktemp("crash"))  # type: ignore[attr-defined]
    msgs = _messages(40)
    clean, crashed = base / "clean", base / "crashed"
    _feed(_writer(clean, rotate_rows=rotate), msgs, batch)

    w = _writer(crashed, rotate_rows=rotate)
    last = None
    for i in range(0, crash_after, batch):
        commits = w.add(0, msgs[i : min(i + batch, crash_after)])
        commits += w.flush_due(force=True)
        last = commits[-1] if commits else last
    # crash: in-memory segment lost; restart from the committed offset and segment start
    w2 = _writer(crashed, rotate_rows=rotate)
    start = last.segment_start if last else 0
    w2.resume(0, start, committed=last.offset if last else None)
    _feed(w2, msgs[start:], second_batch)

    assert _files(crashed) == _files(clean)
    tables = [pq.read_table(p) for p in crashed.rglob("*.parquet")]
    assert sorted(str(e) for t in tables for e in t["event_id"].to_pylist()) == sorted(
        f"e{i}" for i in range(40)
    )


def test_replay_from_zero_rewrites_same_files_and_counts(tmp_path: Path) -> None:
    msgs = _messages(30)
    _feed(_writer(tmp_path, rotate_rows=8), msgs, batch=5)
    before = _files(tmp_path)
    con = open_catalog(tmp_path, "province")
    counts = con.execute("SELECT count(*) FROM encounter").fetchall()
    _feed(_writer(tmp_path, rotate_rows=8), msgs, batch=3)  # other batching, same cuts
    assert _files(tmp_path) == before
    assert con.execute("SELECT count(*) FROM encounter").fetchall() == counts == [(30,)]


def test_current_state_rules(tmp_path: Path) -> None:
    rid = "0000000007:visit"
    recs = [
        tier_record("encounter", record_id=rid, version=1, event_id="a", event_time=T0),
        tier_record("encounter", record_id=rid, version=3, event_id="c", event_time=T0),
        tier_record("encounter", record_id=rid, version=2, event_id="b", event_time=T0),
        # same version twice: the later event_time wins
        tier_record("encounter", record_id="0000000008:x", version=1, event_id="d", event_time=T0),
        tier_record(
            "encounter",
            record_id="0000000008:x",
            version=1,
            event_id="e",
            event_time=T0 + timedelta(minutes=1),
            data=None,
        ),
        # deleted: gone from current state, still in the change log
        tier_record("encounter", record_id="0000000009:y", version=1, event_id="f", event_time=T0),
        tier_record(
            "encounter",
            record_id="0000000009:y",
            version=2,
            op="delete",
            event_id="g",
            event_time=T0,
        ),
        # a delete followed by a re-creation with a higher version is current again
        tier_record(
            "encounter",
            record_id="0000000010:z",
            version=1,
            op="delete",
            event_id="h",
            event_time=T0,
        ),
        tier_record("encounter", record_id="0000000010:z", version=2, event_id="i", event_time=T0),
    ]
    msgs = [FakeMessage.of(TOPIC, 0, i, r) for i, r in enumerate(recs)]
    msgs.append(FakeMessage.of(TOPIC, 0, len(recs), recs[0]))  # a duplicate delivery
    w = _writer(tmp_path)
    w.add(0, msgs)
    w.flush_due(force=True)
    con = open_catalog(tmp_path, "province")
    assert con.execute("SELECT count(*) FROM encounter_changes").fetchall() == [(9,)]
    current = dict(con.execute("SELECT record_id, event_id FROM encounter ORDER BY 1").fetchall())
    assert current == {rid: "c", "0000000008:x": "e", "0000000010:z": "i"}
    row = con.execute(
        "SELECT health_id, encounter_type, json_extract_string(data, '$.health_id') "
        "FROM encounter WHERE record_id = ?",
        [rid],
    ).fetchall()
    assert row == [("0000000000", "outpatient", "0000000000")]


def test_provinces_under_own_prefix_one_view(tmp_path: Path) -> None:
    recs = [tier_record("person", n=i, province=p) for i, p in enumerate(["01", "79", "79"])]
    w = _writer(tmp_path)
    w.add(0, [FakeMessage.of(TOPIC, 0, i, r) for i, r in enumerate(recs)])
    w.flush_due(force=True)
    dirs = sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert dirs == [
        "province/province=01/record_type=person/month=2026-03",
        "province/province=79/record_type=person/month=2026-03",
    ]
    assert open_catalog(tmp_path, "province").execute(
        "SELECT province_code, count(*) FROM person GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("01", 1), ("79", 2)]
    only = open_catalog(tmp_path, "province", province="79")
    assert only.execute("SELECT count(*) FROM person").fetchall() == [(2,)]


def test_schema_evolution_older_file_without_an_optional_field(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.add(0, _messages(3))
    w.flush_due(force=True)
    # an "older" file: written before `referral` existed in the payload model
    [path] = list(tmp_path.rglob("*.parquet"))
    old = pq.read_table(path).drop_columns(["referral"])
    old = old.set_column(0, "event_id", pa.array(["old0", "old1", "old2"]))
    pq.write_table(old, path.with_name("old+0+0.parquet"))
    con = open_catalog(tmp_path, "province")
    rows = con.execute(
        "SELECT event_id, referral IS NULL FROM encounter_changes ORDER BY event_id"
    ).fetchall()
    assert len(rows) == 6 and ("old0", True) in rows and ("e0", False) in rows


def test_file_uri_root(tmp_path: Path) -> None:
    uri = (tmp_path / "objstore").as_uri()
    w = _writer(uri)
    w.add(0, _messages(4))
    w.flush_due(force=True)
    assert len(list((tmp_path / "objstore").rglob("*.parquet"))) == 1
    con = open_catalog(uri, "province")
    assert con.execute("SELECT count(*) FROM encounter").fetchall() == [(4,)]


def test_bad_messages_become_dead_letters(tmp_path: Path) -> None:
    good = _messages(2)
    bad = [
        FakeMessage(TOPIC, 0, 2, b"{not json"),
        FakeMessage(TOPIC, 0, 3, orjson.dumps({"record_type": "spaceship"})),
        FakeMessage(
            TOPIC,
            0,
            4,
            orjson.dumps(
                {**orjson.loads(good[0].value() or b""), "event_id": "x", "record_version": "many"}
            ),
        ),
    ]
    w = _writer(tmp_path)
    w.add(0, good + bad)
    w.flush_due(force=True)
    con = open_catalog(tmp_path, "province")
    assert con.execute("SELECT count(*) FROM encounter").fetchall() == [(2,)]
    # the analysts' catalog: the root's own dead rows, redacted
    assert con.execute("SELECT reason, stage, rejected FROM dlq ORDER BY 1").fetchall() == [
        ("not_json", "sink", 1),
        ("schema_violation", "sink", 1),
        ("unknown_record_type", "sink", 1),
    ]
    con = open_catalog(tmp_path, "dlq")
    reasons = con.execute('SELECT reason, stage, "offset" FROM dlq ORDER BY "offset"').fetchall()
    assert reasons == [
        ("not_json", "sink", 2),
        ("unknown_record_type", "sink", 3),
        ("schema_violation", "sink", 4),
    ]
    assert con.execute('SELECT value FROM dlq WHERE "offset" = 2').fetchall() == [(b"{not json",)]


def test_aggregates_latest_value_and_tombstones(tmp_path: Path) -> None:
    def agg(offset: int, key: str, value: object) -> FakeMessage:
        raw = None if value is None else orjson.dumps(value)
        return FakeMessage(
            "aggregates.live", 0, offset, raw, key.encode(), None, 1_772_000_000_000 + offset
        )

    msgs = [
        agg(0, "01|2026-03|encounters.total", 5),
        agg(1, "01|2026-03|encounters.total", {"value": 7}),
        agg(2, "79|2026-03|births.facility", 1),
        agg(3, "79|2026-03|births.facility", None),
        agg(4, "bad-key", 1),
    ]
    w = SegmentWriter(
        store=Store.open(tmp_path), topic="aggregates.live", encoder=encode_aggregates
    )
    w.add(0, msgs)
    w.flush_due(force=True)
    con = open_catalog(tmp_path, "province")
    assert con.execute("SELECT unit, period, element, value FROM aggregates_live").fetchall() == [
        ("01", "2026-03", "encounters.total", 7.0)
    ]
    assert con.execute("SELECT reason FROM dlq").fetchall() == [("bad_format",)]


def test_dlq_store_keeps_original_bytes_and_reason(tmp_path: Path) -> None:
    headers = dlq_headers(
        [("ce_id", b"abc")],
        reason="bad_signature",
        message="signature does not verify",
        stage="validate",
        topic="station.changes",
        partition=4,
        offset=1234,
        rejected_at="2026-03-10T05:00:00Z",
    )
    msg = FakeMessage("station.changes.dlq", 1, 9, b"\x00raw", b"k", headers)
    w = SegmentWriter(store=Store.open(tmp_path), topic="station.changes.dlq", encoder=encode_dlq)
    w.add(1, [msg, msg])  # delivered twice
    w.flush_due(force=True)
    [path] = list(tmp_path.rglob("*.parquet"))
    assert "dlq/reason=bad_signature/day=2026-03-10" in path.as_posix()
    con = open_catalog(tmp_path, "dlq")
    assert con.execute(
        'SELECT reason, message, stage, topic, partition, "offset", value, key FROM dlq'
    ).fetchall() == [
        (
            "bad_signature",
            "signature does not verify",
            "validate",
            "station.changes",
            4,
            1234,
            b"\x00raw",
            b"k",
        )
    ]
