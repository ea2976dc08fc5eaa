"""The tier encoder's batch path against its per-row path (Hypothesis).

A batch mixing valid tier records of several record types with hostile ones (a field of the
envelope or of ``data`` set to an odd value, a field removed, added or given twice, ``data``
not an object, numbers orjson refuses or rewrites, invalid UTF-8, truncated bytes, bytes that
are not JSON) must give exactly the tables and dead letters that encoding each message alone
gives, and exactly what the orjson path alone (``fast=False``, the reference) gives: the same
rows stored in the same order with the same bytes, the same rejects with the same reasons and
coordinates."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from typing import Any, Literal

import msgspec
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from sinks.columns import Column
from sinks.encode import tier_encoder
from sinks.testing import FakeMessage, tier_record, tier_value
from sinks.tier_batch import convert, tier_plan
from sinks.tier_fast import _odd_rows, fast_convert, fast_plan, fast_tables, take
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser
from tests.unit.streams.test_fuzz_edge import JSON_VALUES, _paths, _set

TOPIC = "t.tier.province"
RECORDS = [
    tier_record(rt, n=i, province=p)
    for i, (rt, p) in enumerate(
        [
            ("encounter", "01"),
            ("encounter", "01"),
            ("encounter", "79"),
            ("immunization", "01"),
            ("chronic_followup", "01"),
            ("person", "79"),
        ]
    )
]
RECORDS.append(tier_record("encounter", n=9, op="delete"))
GOOD = [tier_value(r) for r in RECORDS[:-1]]
DELETE = tier_value(RECORDS[-1])
#: What the worker writes to each tier's topic (national: the allow-listed record).
WRITTEN = {
    "province": [*GOOD, DELETE],
    "national": [
        orjson.dumps(national_record(r.model_dump(), Pseudonymiser("unit-test-key")))
        for r in RECORDS
    ],
}
ODD = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            0,
            2**53 + 1,
            "upsert ",
            "delete",
            "2026-03-10T05:00:00",
            "2026-03-10",
            "2026-13-40T00:00:00Z",
            "2026-03-10 05:00:00+07:00",
            "1970",
            "2026-02",
            {"nested": [1, 2]},
        ]
    ),
)


def _in_data(value: bytes, at: int, text: bytes) -> bytes:
    """``text`` put into the bytes of ``data`` (after its ``at``-th ``:``, else at its start)."""
    start = value.find(b'"data":{')
    if start < 0:
        return value
    colons = [i for i, c in enumerate(value) if c == ord(":") and i > start + 7]
    pos = colons[at % len(colons)] + 1 if colons and at else start + 8
    return value[:pos] + text + value[pos:]


@st.composite
def hostile_bytes(draw: st.DrawFn, written: list[bytes]) -> bytes:
    """Bytes a JSON serialiser of a dict never writes: truncated, invalid UTF-8, a number
    orjson refuses (beyond a double) or rewrites (beyond 64 bits, an exponent beyond ±308),
    an envelope key given twice (the last counts, for both paths)."""
    value = draw(st.sampled_from(written))
    at = draw(st.integers(0, 40))
    kind = draw(st.sampled_from(["cut", "utf8", "number", "number", "twice"]))
    if kind == "cut":
        return value[: draw(st.integers(0, len(value) - 1))]
    if kind == "utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
        return _in_data(value, 0, b'"x' + bad + b'":1,')
    if kind == "number":
        number = draw(
            st.sampled_from([b"1e400", b"-1E+400", b"9" * 23, b"1e-400", b"-2e-0400", b"1.0e308"])
        )
        if at % 2:  # a value of data (an odd JSON value where it is scalar or nested)
            return _in_data(value, at, number + b',"y":')
        return _in_data(value, 0, b'"y":' + number + b",")
    key = draw(
        st.sampled_from([b"op", b"record_version", b"data", b"province_code", b"pseudonymised"])
    )
    odd = draw(st.sampled_from([b'"merge"', b"0", b"2", b"null", b'{"a":1}', b'"79"', b"true"]))
    return value[:-1] + b',"' + key + b'":' + odd + b"}"


@st.composite
def hostile(draw: st.DrawFn, written: list[bytes]) -> bytes:
    """A tier record value broken in one way."""
    if draw(st.integers(0, 3)) == 0:
        return draw(hostile_bytes(written))
    rec = orjson.loads(draw(st.sampled_from(written)))
    kind = draw(st.sampled_from(["set", "set", "set", "drop", "add", "data", "raw"]))
    if kind == "set":
        _set(rec, draw(st.sampled_from(_paths(rec))), draw(ODD))
    elif kind == "drop":
        del rec[draw(st.sampled_from(sorted(rec)))]
    elif kind == "add":
        rec[draw(st.sampled_from(["extra", "data_x", "", "record_type "]))] = draw(ODD)
    elif kind == "data":
        rec["data"] = draw(ODD)
    else:
        return draw(st.sampled_from([b"{not json", b"[]", b"null", b'{"record_type":"x"}']))
    try:
        return orjson.dumps(rec)
    except TypeError:  # an integer orjson does not write (beyond 64 bits)
        return orjson.dumps({**rec, "record_version": None})


def _tables(encoded: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Tier tables as they are; dead-letter tables sorted by their offset."""
    return {
        d: t.sort_by("offset") if d.startswith("dlq/") else t.combine_chunks()
        for d, t in encoded.items()
    }


def _one_by_one(msgs: list[FakeMessage], tier: str) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.Table]] = defaultdict(list)
    for m in msgs:
        for d, t in tier_encoder(tier)([m]).items():
            parts[d].append(t)
    return _tables({d: pa.concat_tables(ts) for d, ts in parts.items()})


def _same(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    assert sorted(a) == sorted(b)
    for d, table in a.items():
        assert table.equals(b[d]), d


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[bytes], str]:
    tier = draw(st.sampled_from(["province", "national", "national"]))
    written = WRITTEN[tier]
    values = draw(
        st.lists(st.one_of(st.sampled_from(written), hostile(written)), min_size=1, max_size=16)
    )
    if draw(st.booleans()):  # the other tier's records: every one dead-lettered
        values.append(WRITTEN["province" if tier == "national" else "national"][0])
    return values, tier


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batches())
def test_batch_path_equals_per_row_path(case: tuple[list[bytes], str]) -> None:
    values, tier = case
    msgs = [FakeMessage(TOPIC, 0, i, v, b"k") for i, v in enumerate(values)]
    batch = _tables(tier_encoder(tier)(msgs))
    _same(batch, _one_by_one(msgs, tier))
    _same(batch, _tables(tier_encoder(tier, fast=False)(msgs)))  # the msgspec path: no other
    rows = sum(t.num_rows for t in batch.values())
    assert rows == len(msgs), "every message is stored or dead-lettered, once"


def test_the_fast_path_stores_what_the_worker_wrote() -> None:
    """Every value the worker writes takes the msgspec path, ``data`` and nested fields stored
    as the worker's bytes — byte-identical to the orjson path's re-serialisation."""
    for tier, written in WRITTEN.items():
        assert fast_tables(tier, written, defaultdict(list)) == [], "none left to orjson"
        msgs = [FakeMessage(TOPIC, 0, i, v) for i, v in enumerate(written)]
        out = tier_encoder(tier)(msgs)
        assert not [d for d in out if d.startswith("dlq/")], tier
        _same(_tables(out), _tables(tier_encoder(tier, fast=False)(msgs)))
        stored = {t for table in out.values() for t in table.column("data").to_pylist() if t}
        assert stored == {
            orjson.dumps(orjson.loads(v)["data"]).decode()
            for v in written
            if orjson.loads(v)["data"] is not None
        }


def test_other_spellings_inside_data_are_stored_as_written() -> None:
    """JSON the worker does not write but that reads as the same values (spaces, ``-0``,
    ``1E5``, ``1.50``, escapes): stored as sent, every other column as the orjson path
    stores it, and ``data`` read back equal to what that path stores."""
    spellings = [b' "y" : [ 1 , 2 ] ,', b'"y":-0,', b'"y":1E5,', b'"y":1.50,', b'"y":"\\u00e9\\/",']
    for text in spellings:
        value = _in_data(GOOD[0], 0, text)
        (fast,) = tier_encoder("province")([FakeMessage(TOPIC, 0, 0, value)]).values()
        (ref,) = tier_encoder("province", fast=False)([FakeMessage(TOPIC, 0, 0, value)]).values()
        assert fast.drop_columns(["data"]).equals(ref.drop_columns(["data"])), text
        stored = fast.column("data")[0].as_py()
        assert stored.encode() == value[value.find(b'"data":') + 7 : -1], text
        assert orjson.loads(stored) == orjson.loads(ref.column("data")[0].as_py()), text


def test_duplicate_keys_inside_data_are_stored_as_written() -> None:
    """A key given twice inside ``data`` (no JSON serialiser of a dict writes it; only the
    ``tuyen-streams`` principal may write a tier topic): the row is stored, its payload
    column holds the last value (as orjson reads it), ``data`` the bytes as sent. Pinned so a
    change is seen: docs/stores.md, "Stored as written"."""
    value = _in_data(GOOD[0], 0, b'"encounter_type":"inpatient",')
    out = tier_encoder("province")([FakeMessage(TOPIC, 0, 0, value)])
    (table,) = out.values()
    assert table.column("encounter_type").to_pylist() == ["outpatient"]
    data = value[value.find(b'"data":') + 7 : -1].decode()
    assert table.column("data").to_pylist() == [data]
    assert data.startswith('{"encounter_type":"inpatient",')
    reference = tier_encoder("province", fast=False)([FakeMessage(TOPIC, 0, 0, value)])
    (ref,) = reference.values()
    assert ref.column("encounter_type").to_pylist() == ["outpatient"]
    assert orjson.loads(ref.column("data")[0].as_py()) == orjson.loads(data)


def _dead(encoded: dict[str, pa.Table]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d, t in encoded.items():
        if d.startswith("dlq/"):
            out += t.select(["reason", "offset"]).to_pylist()
    return sorted(out, key=lambda r: r["offset"])


def test_only_the_rows_at_fault_are_dead_lettered() -> None:
    good = orjson.loads(GOOD[0])
    values = [
        GOOD[0],
        orjson.dumps({**good, "record_version": 0}),
        GOOD[1],
        orjson.dumps({**good, "record_version": "many"}),
        orjson.dumps({**good, "op": "merge"}),
        orjson.dumps({k: v for k, v in good.items() if k != "signer"}),
        orjson.dumps({**good, "surprise": 1}),
        orjson.dumps({**good, "data": [1]}),
        orjson.dumps({**good, "event_time": "yesterday"}),
        GOOD[1],
    ]
    msgs = [FakeMessage(TOPIC, 0, i, v) for i, v in enumerate(values)]
    out = tier_encoder("province")(msgs)
    stored = out["province/province=01/record_type=encounter/month=2026-03"]
    assert stored.column("station_seq").to_pylist() == [1, 2, 2]
    assert _dead(out) == [
        {"reason": "schema_violation", "offset": i} for i in (1, 3, 4, 5, 6, 7, 8)
    ], "each row the envelope model refuses is dead-lettered with the model's reason"


class _Envelope(BaseModel):
    """Another envelope (as the national tier's allow-list has): optional fields with
    defaults, a date, bounds on one side."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    op: Literal["upsert", "delete"]
    rank: int = Field(ge=1)
    received_date: date | None = None
    flagged: bool = True
    data: dict[str, Any] | None


def test_the_batch_path_is_generic_over_the_column_declarations() -> None:
    columns = (
        Column("event_id", pa.string(), "VARCHAR"),
        Column("op", pa.string(), "VARCHAR"),
        Column("rank", pa.int64(), "BIGINT"),
        Column("received_date", pa.date32(), "DATE"),
        Column("flagged", pa.bool_(), "BOOLEAN"),
        Column("data", pa.string(), "VARCHAR", json=True),
        Column("month", pa.string(), "VARCHAR"),
        Column("tags", pa.string(), "VARCHAR", json=True),
    )
    plan = tier_plan(_Envelope, columns)
    good = {"event_id": "a", "op": "upsert", "rank": 1, "data": {"month": "2026-01", "tags": [1]}}
    rows = [
        good,
        {**good, "received_date": "2026-01-31", "flagged": False},
        {**good, "rank": 0},
        {**good, "op": "merge"},
        {k: v for k, v in good.items() if k != "event_id"},
        {**good, "station_code": "x"},
        {**good, "data": None, "op": "delete"},
    ]
    table, rejects = convert(plan, rows)
    assert table is not None
    assert sorted(rejects) == [2, 3, 4, 5]
    assert table.to_pylist() == [
        {
            "event_id": "a",
            "op": "upsert",
            "rank": 1,
            "received_date": None,
            "flagged": None,  # absent: the model's default is not stored (as before)
            "data": '{"month":"2026-01","tags":[1]}',
            "month": "2026-01",
            "tags": "[1]",
        },
        {
            "event_id": "a",
            "op": "upsert",
            "rank": 1,
            "received_date": date(2026, 1, 31),
            "flagged": False,
            "data": '{"month":"2026-01","tags":[1]}',
            "month": "2026-01",
            "tags": "[1]",
        },
        {
            "event_id": "a",
            "op": "delete",
            "rank": 1,
            "received_date": None,
            "flagged": None,
            "data": None,
            "month": None,
            "tags": None,
        },
    ]
    for i, row in enumerate(rows):  # each row alone: the same answer
        alone, why = convert(plan, [row])
        assert (alone is None) == (i in rejects) and bool(why) == (i in rejects)
    fp = fast_plan(_Envelope, columns)  # the msgspec path: the rows it takes, the same table
    envs = []
    for i, row in enumerate(rows):
        try:
            envs.append((i, msgspec.structs.astuple(fp.envelope.decode(orjson.dumps(row)))))
        except msgspec.ValidationError:
            assert i in rejects
    index, decoded, payloads, left = take(fp, [i for i, _ in envs], [e for _, e in envs])
    assert index == [0, 1, 6] and left == []
    assert fast_convert(fp, decoded, payloads).equals(table)


_ODD_NUMBER = re.compile(rb"[0-9]{20}|[eE][+-]?[0-9]{3,}[,}\] \t\n\r]")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from([b"0", b"9", b"e", b"E", b"+", b"-", b",", b"}", b"]", b" ", b"a"])
            | st.sampled_from([b'"', b"{", b".", b"\n", b"\xc3\xa9", b"1" * 20, b"e400,"]),
            max_size=40,
        ).map(b"".join),
        min_size=1,
        max_size=8,
    )
)
def test_the_number_screen_finds_every_number_orjson_refuses_or_rewrites(
    datas: list[bytes],
) -> None:
    """The batch's one-pass screen flags every value in which a number has 20 digits in a row
    or an exponent of 3 digits or more that ends it (the rule, as a regular expression per
    value), and no other when each value ends as an object does (only a run across two
    values, which no object ends in, can add one)."""
    flagged = _odd_rows([msgspec.Raw(d) for d in datas])
    rule = {i for i, d in enumerate(datas) if _ODD_NUMBER.search(d)}
    assert rule <= flagged
    closed = [d + b"}" for d in datas]
    assert _odd_rows([msgspec.Raw(d) for d in closed]) == {
        i for i, d in enumerate(closed) if _ODD_NUMBER.search(d)
    }


def test_json_text_columns_with_nulls_and_short_values() -> None:
    """The JSON text columns of a batch where some rows have a nested field ``null`` or
    absent and others a value as long as ``null`` (``[12]``, ``true``): as the orjson path
    stores them."""
    good = orjson.loads(GOOD[0])
    variants: list[Any] = [None, [12], True, "ab", {"a": 1}, "absent"]
    values = []
    for i, v in enumerate(variants * 2):
        data = dict(good["data"])
        if v == "absent":
            del data["referral"]
        else:
            data["referral"] = v
        if i >= len(variants):
            data["diagnoses"] = None
        values.append(orjson.dumps({**good, "data": data}))
    msgs = [FakeMessage(TOPIC, 0, i, v) for i, v in enumerate(values)]
    assert fast_tables("province", values, defaultdict(list)) == []
    out = _tables(tier_encoder("province")(msgs))
    _same(out, _tables(tier_encoder("province", fast=False)(msgs)))
    (table,) = out.values()
    assert table.column("referral").to_pylist()[:6] == [
        None,
        "[12]",
        "true",
        '"ab"',
        '{"a":1}',
        None,
    ]
