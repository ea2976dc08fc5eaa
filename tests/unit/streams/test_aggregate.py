"""Live aggregate maths: deltas retract, counters are idempotent, equal the recomputation."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DevKeyRegistry
from schemas.hierarchy import Hierarchy
from schemas.tier import load_tier_record
from streams.aggregate import LiveCounters, contribution, deltas, recompute
from streams.pipeline import BatchProcessor
from streams.pseudonymise import Pseudonymiser
from streams.validate import Validator
from tests.data.bad_inputs import KEY_SEED, STATIONS, EventFactory
from tests.unit.streams.test_validate import raw


def test_delta_retracts_previous_contribution() -> None:
    prev = ["2026-01", [["station", "00004"], ["national", "VN"]], {"a": 1, "b": 1}]
    cur = ["2026-01", [["station", "00004"], ["national", "VN"]], {"a": 1}]
    assert deltas(prev, cur) == {
        ("station", "00004", "2026-01", "b"): -1,
        ("national", "VN", "2026-01", "b"): -1,
    }
    assert deltas(prev, None)[("station", "00004", "2026-01", "a")] == -1


def test_counters_apply_each_source_offset_once() -> None:
    live = LiveCounters()
    msg = {"sp": 0, "units": {"VN": "national"}, "e": [[5, {"VN|2026-01|a": 2}]]}
    live.apply(1, msg)
    live.apply(1, msg)  # redelivered after a crash
    live.apply(1, {"sp": 0, "units": {"VN": "national"}, "e": [[4, {"VN|2026-01|a": 7}]]})
    assert live.values() == {"VN|2026-01|a": 2}
    live.apply(1, {"sp": 1, "units": {"VN": "national"}, "e": [[4, {"VN|2026-01|a": 1}]]})
    assert live.values() == {"VN|2026-01|a": 3}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 40))
def test_pipeline_counters_equal_recomputation(seed: int, batch: int) -> None:
    rng = random.Random(seed)
    f = EventFactory(rng=random.Random(seed))
    now = datetime.now(UTC)
    changes = []
    for i in range(40):
        rt = rng.choice(["encounter", "immunization", "birth", "chronic_followup", "person"])
        changes.append(
            f.change(rt, station=rng.choice(STATIONS[:-1]), when=now - timedelta(days=i % 30))
        )
    for c in rng.sample(changes, 15):
        kwargs = dict(station=c.station, health_id=c.key, record_id=c.record_id, when=c.time)
        if rng.random() < 0.5:
            changes.append(f.change(c.record_type.value, version=2, op="delete", **kwargs))  # type: ignore[arg-type]
        else:
            data = dict(c.data or {})
            if "measurements" in data:  # a corrected reading: now uncontrolled (≥ 140/90)
                data["measurements"] = {
                    "blood_pressure": {"systolic_mmhg": 165, "diastolic_mmhg": 100}
                }
            if "encounter_type" in data:
                data["encounter_type"] = "inpatient"
            changes.append(f.change(c.record_type.value, version=2, data=data, **kwargs))  # type: ignore[arg-type]
    from schemas import encode

    msgs = [encode(c) for c in changes]
    p = BatchProcessor(
        Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode())),
        Pseudonymiser("k"),
        aggregate_partitions=3,
    )
    live = LiveCounters()
    records = []
    for start in range(0, len(msgs), batch):
        out = p.process(raw(msgs[start : start + batch], start=start))
        assert not out.rejected, out.rejected
        records += [
            load_tier_record(o.value or b"")
            for o in out.outputs
            if o.topic.startswith("tier.province.")  # the record-level copy
        ]
        for q, message in out.deltas:
            live.apply(q, message)
            live.apply(q, message)  # at-least-once redelivery changes nothing
    got = {k: v for k, v in live.values().items() if v}
    assert got == recompute(records)
    by_unit: dict[str, int] = defaultdict(int)
    for key, v in got.items():
        by_unit[key.split("|")[0]] += v
    assert by_unit["VN"] == sum(v for k, v in by_unit.items() if len(k) == 2 and k != "VN")


def test_delete_contributes_nothing() -> None:
    f = EventFactory()
    c = f.change("encounter", op="delete")
    p = BatchProcessor(
        Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode())), Pseudonymiser("k")
    )
    v1 = f.change("encounter", health_id=c.key, record_id=c.record_id, when=c.time)
    out = p.process(raw([__import__("schemas").encode(v1)]))
    rec = load_tier_record(
        next(o.value for o in out.outputs if o.topic.startswith("tier.province.")) or b""
    )
    assert contribution(rec) is not None
    assert contribution(rec.model_copy(update={"op": "delete", "data": None})) is None


def test_counting_side_remembers_the_newest_event_time_per_counter() -> None:
    """What `aggregates.live` stamps as the event time a value reflects (freshness)."""
    from streams.aggregate import DeltaBuilder, LiveCounters

    builder = DeltaBuilder(1)
    builder.add(0, 10, {("station", "00004", "2026-10", "visits"): 1}, 1_000)
    builder.add(0, 11, {("station", "00004", "2026-10", "visits"): 1}, 3_000)
    builder.add(0, 12, {("station", "00004", "2026-10", "visits"): 1}, 2_000)
    builder.add(0, 13, {("station", "00005", "2026-10", "visits"): 1})  # no time: older peers
    live = LiveCounters()
    for q, message in builder.drain():
        live.apply(q, message)
        live.apply(q, message)  # a replay changes nothing
    assert live.event_ms == {"00004|2026-10|visits": 3_000}
    assert live.values() == {"00004|2026-10|visits": 3, "00005|2026-10|visits": 1}
