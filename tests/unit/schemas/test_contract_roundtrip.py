"""encode/decode and the JSON Lines form round-trip every record type (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    CURRENT_MAJOR,
    DevKeyRegistry,
    RecordChange,
    RecordType,
    decode,
    encode,
    from_json_line,
    make_change,
    sign,
    to_json_line,
    verify,
)
from schemas.examples import example_data, example_record_id

REG = DevKeyRegistry(b"test-seed")
NOW = datetime(2025, 7, 1, tzinfo=UTC)

health_ids = st.from_regex(r"\A[0-9]{10}\Z").filter(lambda s: s != "0000000000")
stations = st.from_regex(r"\A[0-9]{5}\Z")
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2025, 6, 30))
offsets = st.sampled_from([UTC, timezone(timedelta(hours=7))])
record_types = st.sampled_from(list(RecordType))


@st.composite
def changes(draw: st.DrawFn) -> RecordChange:
    rt = draw(record_types)
    major = draw(st.sampled_from([1, CURRENT_MAJOR[rt]]))
    op = draw(st.sampled_from(["upsert", "upsert", "delete"]))
    station = draw(stations)
    hid = draw(health_ids)
    on = draw(days)
    when = datetime.combine(on, time(draw(st.integers(0, 23))), tzinfo=draw(offsets))
    when += timedelta(microseconds=draw(st.integers(0, 999_999)))
    local = draw(st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z"))
    signer = f"hw-{station}-{draw(st.integers(1, 8))}"
    data = example_data(rt, major, health_id=hid, on=on)
    version = draw(st.integers(1, 2**53 - 1))
    if rt is RecordType.PERSON_TRANSFER:  # final: version 1, never deleted, to another station
        op, version = "upsert", 1
        data["to_station"] = "00007" if station != "00007" else "00004"
    rid = example_record_id(rt, health_id=hid, station=station, period=str(on)[:7], local_id=local)
    change = make_change(
        station=station,
        record_type=rt,
        record_id=rid,
        op=op,
        record_version=version,
        station_seq=draw(st.integers(1, 2**53 - 1)),
        signer=signer,
        data=data if op == "upsert" else None,
        time=when,
        schema_major=major,
        now=NOW,
    )
    return sign(change, REG.signing_key(signer))


@settings(max_examples=150, deadline=None)
@given(changes())
def test_binary_mode_round_trip(change: RecordChange) -> None:
    msg = encode(change)
    back = decode(msg.value, msg.headers, key=msg.key, now=NOW)
    assert back == change
    assert encode(back) == msg
    verify(back, REG)


@settings(max_examples=75, deadline=None)
@given(changes())
def test_json_line_round_trip(change: RecordChange) -> None:
    back = from_json_line(to_json_line(change), now=NOW)
    assert back == change
    verify(back, REG)


def test_headers_follow_cloudevents_binary_mode() -> None:
    from schemas.examples import example_change

    msg = encode(example_change("immunization"))
    names = [name for name, _ in msg.headers]
    assert names == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_dataschema",
        "ce_subject",
        "content-type",
    ]
    h = dict(msg.headers)
    assert h["ce_type"] == b"vn.health.immunization.upsert"
    assert h["ce_source"] == b"station/00004"
    assert h["ce_dataschema"] == b"immunization/v1"
    assert msg.key == b"0123456789"


def test_resource_key_is_station_and_resource() -> None:
    from schemas.examples import example_change

    change = example_change("stock_snapshot")
    assert change.record_id == "00004:stock:2025-01"
    assert encode(change).key == b"00004:stock"


def test_decode_accepts_any_rfc3339_offset() -> None:
    from schemas.examples import example_change

    change = example_change("person")
    msg = encode(change)
    local = change.time.astimezone(timezone(timedelta(hours=7))).isoformat()
    headers = [(k, local.encode() if k == "ce_time" else v) for k, v in msg.headers]
    assert decode(msg.value, headers, now=NOW).time == change.time


def test_make_change_accepts_payload_models() -> None:
    from schemas import parse_payload

    payload = parse_payload("death", 1, example_data("death"), now=NOW)
    change = make_change(
        station="00004",
        record_type="death",
        record_id="0123456789:d1",
        op="upsert",
        record_version=1,
        station_seq=9,
        signer="hw-00004-1",
        data=payload,
        now=NOW,
    )
    assert change.data == example_data("death")
    assert change.payload(now=NOW) == payload
