"""The tier encoder's batch path against its per-row path (Hypothesis).

A batch mixing valid tier records of several record types with hostile ones (a field of the
envelope or of ``data`` set to an odd value, a field removed or added, ``data`` not an object,
bytes that are not JSON) must give exactly the tables and dead letters that encoding each
message alone gives: the same rows stored in the same order, the same rejects with the same
reasons and coordinates."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from sinks.columns import Column
from sinks.encode import tier_encoder
from sinks.testing import FakeMessage, tier_record, tier_value
from sinks.tier_batch import convert, tier_plan
from tests.unit.streams.test_fuzz_edge import JSON_VALUES, _paths, _set

TOPIC = "t.tier.province"
GOOD = [
    tier_value(tier_record(rt, n=i, province=p))
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
DELETE = tier_value(tier_record("encounter", n=9, op="delete"))
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


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """A tier record value broken in one way."""
    rec = orjson.loads(draw(st.sampled_from([*GOOD, DELETE])))
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


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.one_of(st.sampled_from([*GOOD, DELETE]), hostile()), min_size=1, max_size=16),
    st.sampled_from(["province", "national"]),
)
def test_batch_path_equals_per_row_path(values: list[bytes], tier: str) -> None:
    msgs = [FakeMessage(TOPIC, 0, i, v, b"k") for i, v in enumerate(values)]
    batch = _tables(tier_encoder(tier)(msgs))
    alone = _one_by_one(msgs, tier)
    assert sorted(batch) == sorted(alone)
    for d, table in batch.items():
        assert table.equals(alone[d]), d
    rows = sum(t.num_rows for t in batch.values())
    assert rows == len(msgs), "every message is stored or dead-lettered, once"


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
