"""Pure helpers beside the evaluator: __consumer_offsets decoding, freshness, the page."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.monitor.burrow import Status
from streams.monitor.freshness import freshness_percentiles, parse_ce_time, percentile
from streams.monitor.model import GroupLag, PartitionLag, PipelineHealth, Snapshot
from streams.monitor.offsets_log import decode_group_metadata, decode_offset_commit
from streams.monitor.page import render_page


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def key(group: str, topic: str, partition: int, version: int = 1) -> bytes:
    return struct.pack(">h", version) + _s(group) + _s(topic) + struct.pack(">i", partition)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_decode_offset_commit_value_versions(version: int) -> None:
    value = struct.pack(">hq", version, 42)
    if version >= 3:
        value += struct.pack(">i", 7)
    value += bytes([3]) + b"md" if version >= 4 else _s("md")
    value += struct.pack(">q", 1_700_000_000_123)
    if version == 1:
        value += struct.pack(">q", 1_800_000_000_000)
    if version >= 4:
        value += bytes([0])  # no tagged fields
    rec = decode_offset_commit(key("g", "t", 3), value)
    assert rec is not None
    assert (rec.group, rec.topic, rec.partition, rec.offset) == ("g", "t", 3, 42)
    assert rec.commit_timestamp_ms == 1_700_000_000_123


def test_decode_skips_other_records_and_reads_tombstones() -> None:
    assert decode_offset_commit(struct.pack(">h", 2) + _s("group"), b"\x00\x03") is None
    assert decode_offset_commit(None, None) is None
    tomb = decode_offset_commit(key("g", "t", 0), None)
    assert tomb is not None and tomb.offset is None
    with pytest.raises(ValueError):
        decode_offset_commit(key("g", "t", 0), b"\x00\x01\x00")


def test_freshness_percentiles_nearest_rank() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pairs = [(base, base + timedelta(seconds=s)) for s in range(1, 101)]
    p = freshness_percentiles(pairs)
    assert (p.count, p.p50, p.p95, p.p99, p.max) == (100, 50.0, 95.0, 99.0, 100.0)
    assert freshness_percentiles([]).count == 0
    skew = freshness_percentiles([(base, base - timedelta(seconds=5))])
    assert skew.p50 == 0.0


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200))
def test_percentiles_are_ordered_samples(values: list[float]) -> None:
    s = sorted(values)
    p50, p95, p99 = (percentile(s, q) for q in (50, 95, 99))
    assert p50 <= p95 <= p99 <= s[-1] and p50 in s and p99 in s


def test_parse_ce_time() -> None:
    assert parse_ce_time(b"2026-11-26T06:51:39.088Z") == datetime(
        2026, 11, 26, 6, 51, 39, 88000, tzinfo=UTC
    )
    assert parse_ce_time("2026-11-26T13:51:39+07:00") == datetime(
        2026, 11, 26, 6, 51, 39, tzinfo=UTC
    )
    assert parse_ce_time(b"yesterday") is None and parse_ce_time(None) is None


def test_page_lists_every_group_coloured_and_escaped() -> None:
    part = PartitionLag("t", 0, 5, 9, 4, 2.5, Status.STALL, 1.0, 10, 1)
    snap = Snapshot(
        1_800_000_000_000,
        (
            GroupLag("<validators>", "STABLE", Status.ERR, (part,)),
            GroupLag("sink.district", "EMPTY", Status.OK, ()),
        ),
        PipelineHealth(dlq_reasons={"not_json": 3, "bad_time": 9}),
    )
    html = render_page(snap, refresh_s=5)
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "&lt;validators&gt;" in html and "sink.district" in html
    assert 'data-status="ERR"' in html and "t[0] STALL" in html
    assert html.index("bad_time") < html.index("not_json")
    assert "collecting" in render_page(None)


def _assignment(parts: list[tuple[str, int]]) -> bytes:
    out = struct.pack(">hi", 0, len(parts))
    for topic, p in parts:
        out += _s(topic) + struct.pack(">ii", 1, p)
    return out + struct.pack(">i", -1)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_decode_group_metadata_members_and_owners(version: int) -> None:
    """Members of a classic group, from its coordinator's record (no admin request)."""
    value = struct.pack(">h", version) + _s("consumer") + struct.pack(">i", 7)
    value += _s("range") + _s("m-1")
    if version >= 2:
        value += struct.pack(">q", 1_700_000_000_000)
    value += struct.pack(">i", 2)
    for member, host, tp in (("m-1", "/10.0.0.1", ("t", 0)), ("m-2", "/10.0.0.2", ("t", 1))):
        value += _s(member)
        if version >= 3:
            value += struct.pack(">h", -1)  # no group instance id
        value += _s(f"client-{member}") + _s(host)
        value += struct.pack(">ii", 30_000, 10_000)
        sub = b"\x00\x00"
        assignment = _assignment([tp])
        value += struct.pack(">i", len(sub)) + sub + struct.pack(">i", len(assignment)) + assignment
    key = struct.pack(">h", 2) + _s("g")
    got = decode_group_metadata(key, value)
    assert got is not None and got.members is not None
    assert got.members == (("client-m-1", "/10.0.0.1"), ("client-m-2", "/10.0.0.2"))
    assert got.owners == {
        ("t", 0): ("/10.0.0.1", "client-m-1"),
        ("t", 1): ("/10.0.0.2", "client-m-2"),
    }
    gone = decode_group_metadata(key, None)
    assert gone is not None and gone.members is None
    assert decode_group_metadata(struct.pack(">h", 1) + _s("g"), b"") is None  # a commit key
