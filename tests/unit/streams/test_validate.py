"""The validator and the batch pipeline on the bad-input corpus (pure, no broker)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas import KafkaMessage, Reason
from schemas.dlq import H_REASON, H_SOURCE_OFFSET, H_TRUNCATED, header_value
from schemas.hierarchy import Hierarchy
from schemas.hierarchy.merger import restate_province
from schemas.kafka import KafkaConnection
from schemas.national import NationalRecord
from schemas.partition import partition_for
from schemas.tier import TierRecord, load_tier_record
from schemas.topics import RecordTopics
from streams.pipeline import BatchOutput, BatchProcessor
from streams.pseudonym_key import DEV_PSEUDONYM_KEY
from streams.pseudonymise import Pseudonymiser
from streams.route import H_TIER, encode_record, route, tier_headers
from streams.validate import Accepted, RawMessage, Validator
from tests.data.bad_inputs import KEY_SEED, Case, EventFactory, bad_inputs

PARTITIONS = 12  # StreamsConfig's default: the check processes use it too
FACTORY = EventFactory()
CASES = bad_inputs(FACTORY)


def processor(f: EventFactory = FACTORY, record_topics: RecordTopics = "single") -> BatchProcessor:
    """A processor verifying with the corpus's key registry (a real one, not the dev keys)."""
    validator = Validator(Hierarchy.default(), f.key_registry(), partitions=PARTITIONS)
    return BatchProcessor(
        validator, Pseudonymiser("k"), topic_prefix="t.", record_topics=record_topics
    )


def test_each_province_record_goes_to_its_own_topic_and_rejections_carry_no_payload() -> None:
    valid = FACTORY.valid(20)
    p = processor(record_topics="province")
    out = p.process(raw([*valid, *(m for c in CASES for m in (*c.setup, c.message))]))
    record_level = [o for o in out.outputs if o.topic.startswith("t.tier.province.")]
    assert len(record_level) == out.accepted
    assert not [o for o in out.outputs if o.topic in {"t.tier.district", "t.tier.province"}]
    for o in record_level:
        rec = load_tier_record(o.value or b"")
        assert o.topic == "t.tier.province." + restate_province(rec.province_code)
    dead = [o for o in out.outputs if o.topic == "t.station.changes.dlq"]
    rejections = [o for o in out.outputs if o.topic == "t.station.changes.rejections"]
    assert len(rejections) == len(dead) == sum(out.rejected.values())
    for r, d in zip(rejections, dead, strict=True):
        doc = orjson.loads(r.value or b"")
        assert set(doc) == {"reason", "stage", "station", "rejected_at", "topic", "partition",
                            "offset"}  # fmt: skip
        assert doc["reason"] == header_value(d.headers, "tuyen_reason")
        assert r.key is None and [k for k, _ in r.headers] == ["tuyen_reason"]


def raw(
    msgs: Sequence[KafkaMessage], start: int = 0, *, wrong_partition: bool = False
) -> list[RawMessage]:
    """Raw messages as the broker delivers them: each on its key's murmur2 partition (or on
    the next one with ``wrong_partition``), received now."""
    now = datetime.now(UTC)
    return [
        RawMessage(
            m.key,
            m.value,
            m.headers,
            "t.station.changes",
            (partition_for(m.key or b"", PARTITIONS) + wrong_partition) % PARTITIONS,
            start + i,
            now,
        )
        for i, m in enumerate(msgs)
    ]


def corpus_stream(valid: Sequence[KafkaMessage], cases: Sequence[Case]) -> list[RawMessage]:
    """``valid`` with a case (its setup, then itself) after each valid message, the rest at
    the end; every message on its murmur2 partition except the wrong-partition cases."""
    out: list[RawMessage] = []

    def put(msgs: Sequence[KafkaMessage], wrong: bool = False) -> None:
        out.extend(raw(msgs, start=len(out), wrong_partition=wrong))

    for i, m in enumerate(valid):
        put([m])
        if i < len(cases):
            put(cases[i].setup)
            put([cases[i].message], cases[i].wrong_partition)
    for case in cases[len(valid) :]:
        put(case.setup)
        put([case.message], case.wrong_partition)
    return out


def dlq_reasons(out: BatchOutput) -> list[str]:
    return [
        header_value(m.headers, H_REASON) or "" for m in out.outputs if m.topic.endswith(".dlq")
    ]


def test_corpus_has_at_least_25_distinct_reasons() -> None:
    assert len(CASES) >= 25 + 30
    assert len({c.reason for c in CASES}) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_bad_input_gets_its_reason(case: Case) -> None:
    p = processor()
    setup = p.process(raw(case.setup))
    assert not setup.rejected, setup.rejected
    assert setup.accepted == len(case.setup)
    out = p.process(raw([case.message], start=100, wrong_partition=case.wrong_partition))
    assert dlq_reasons(out) == [case.reason.value]
    assert [m.topic for m in out.outputs] == [
        "t.station.changes.dlq",
        "t.station.changes.rejections",
    ], "a rejected input produces its dead letter and its payload-free rejection only"
    dlq = next(m for m in out.outputs if m.topic == "t.station.changes.dlq")
    if header_value(dlq.headers, H_TRUNCATED) is None:
        assert dlq.value == case.message.value  # original bytes untouched
        assert dlq.key == case.message.key
    else:  # too large to keep whole: a truncated copy
        assert case.message.value.startswith(dlq.value or b"")
        assert len(dlq.value or b"") + sum(len(v) for _, v in dlq.headers) < 600_000
    assert header_value(dlq.headers, H_SOURCE_OFFSET) == "100"
    assert header_value(dlq.headers, H_REASON) == case.reason.value
    assert [k for k, _ in dlq.headers].count(H_REASON) == 1, "a station's tuyen_* is renamed"


def test_interleaved_valid_events_all_come_through() -> None:
    f = EventFactory()
    valid = f.valid(60)
    cases = bad_inputs(f)
    p = processor(f)
    out = p.process(corpus_stream(valid, cases))
    assert out.accepted == len(valid) + sum(len(c.setup) for c in cases)
    assert sorted(dlq_reasons(out)) == sorted(c.reason.value for c in cases)
    by_topic: dict[str, int] = {}
    for o in out.outputs:
        by_topic[o.topic] = by_topic.get(o.topic, 0) + 1
    for t in ("t.tier.district", "t.tier.province", "t.tier.national"):
        assert by_topic[t] == out.accepted
    assert "t.changes.valid" not in by_topic  # StreamsConfig.publish_valid is off
    for o in out.outputs:
        if o.topic == "t.tier.district":
            rec = load_tier_record(o.value or b"")
            assert rec.station_code and rec.province_code and rec.schema_major >= 1


def test_exact_duplicate_is_dropped_not_dead_lettered() -> None:
    f = EventFactory()
    msg = f.message(f.change("encounter"))
    p = processor()
    first = p.process(raw([msg]))
    again = p.process(raw([msg, msg], start=1))
    assert first.accepted == 1
    assert again.accepted == 0 and again.duplicates == 2 and not again.outputs


def test_correction_and_delete_are_accepted_in_order() -> None:
    f = EventFactory()
    v1 = f.change("encounter")
    hid = v1.record_id.split(":")[0]
    v2 = f.change("encounter", health_id=hid, record_id=v1.record_id, version=2, when=v1.time)
    d3 = f.change(
        "encounter", health_id=hid, record_id=v1.record_id, version=3, op="delete", when=v1.time
    )
    p = processor()
    out = p.process(raw([f.message(v1), f.message(v2), f.message(d3)]))
    assert out.accepted == 3 and not out.rejected
    state = p.state.get(v1.record_id, 0)
    assert state is not None and state["v"] == 3 and state["d"] and state["c"] is None


def test_upcasts_older_major() -> None:
    f = EventFactory()
    m = f.message(f.change("encounter", major=1))
    out = processor().process(raw([m]))
    rec = load_tier_record(next(o.value for o in out.outputs if o.topic == "t.tier.district"))  # type: ignore[arg-type]
    assert rec.source_major == 1 and rec.schema_major == 2
    assert rec.data is not None and "blood_pressure" in rec.data["vitals"]


def test_station_seq_gaps_are_recorded() -> None:
    f = EventFactory()
    msgs = [f.message(f.change("encounter", station="00367")) for _ in range(5)]
    p = processor()
    p.process(raw([msgs[0], msgs[1], msgs[4]]))
    report = p.seq.report()
    assert report["00367"]["missing"] == 2
    assert report["00367"]["gaps"] == [[3, 4]]


def test_unknown_reason_codes_are_contract_reasons() -> None:
    for case in bad_inputs(EventFactory()):
        assert Reason(case.reason.value) is case.reason


def test_fast_tier_dicts_are_valid_tier_records() -> None:
    """The hot path builds tier records as plain dicts (no pydantic); they must validate as
    ``TierRecord`` (same fields, same order) on every record-level tier and as
    ``NationalRecord`` on the national one, and the pipeline's inlined routing
    must equal ``route`` + ``tier_headers``."""
    f = EventFactory()
    msgs = raw([f.message(f.change(rt)) for rt in ("person", "encounter", "birth", "immunization")])
    msgs += raw([f.message(f.change("staff_snapshot", station="00367"))], start=len(msgs))
    p = processor()
    checked = p.check(msgs)
    assert all(isinstance(c, Accepted) for c in checked), checked
    fields = list(TierRecord.model_fields)
    for c in checked:
        assert isinstance(c, Accepted)
        assert list(c.record) == fields
        TierRecord.model_validate(c.record)
    out = p.finish(msgs, checked)
    assert out.accepted == len(msgs)
    national_fields = list(NationalRecord.model_fields)
    for o in out.outputs:
        if o.topic.endswith(".rejections"):
            continue
        if o.topic.endswith("national"):  # the allow-listed copy (schemas.national)
            assert list(orjson.loads(o.value or b"")) == national_fields
            assert NationalRecord.model_validate_json(o.value or b"").pseudonymised
            continue
        rec = load_tier_record(o.value or b"")
        assert list(orjson.loads(o.value or b"")) == fields
        assert not rec.pseudonymised
    expected = []
    for c in checked:
        assert isinstance(c, Accepted)
        for routed in route(c.record, p.pseudonymiser):
            expected.append(
                (
                    p.topics[routed.tier],
                    routed.key.encode(),
                    encode_record(routed.record),
                    tier_headers(routed),
                )
            )
    assert [tuple(o)[:4] for o in out.outputs] == expected
    assert all(o.origin is m for o, m in zip(out.outputs[::3], msgs, strict=True))


@pytest.mark.parametrize("record_topics", ["single", "province"])
def test_changes_valid_is_published_only_when_asked(record_topics: RecordTopics) -> None:
    """``publish_valid``: each accepted event also goes to ``changes.valid``, first, with the
    bytes of its record-level output and ``tuyen_tier: valid``; off (the default) it does not."""
    f = EventFactory()
    msgs = raw([f.message(f.change(rt)) for rt in ("person", "encounter", "immunization")])
    validator = Validator(Hierarchy.default(), f.key_registry(), partitions=PARTITIONS)
    p = BatchProcessor(
        validator,
        Pseudonymiser("k"),
        topic_prefix="t.",
        record_topics=record_topics,
        publish_valid=True,
    )
    out = p.process(msgs)
    assert out.accepted == len(msgs)
    per_event = 4 if record_topics == "single" else 3
    assert len(out.outputs) == per_event * len(msgs)
    for i in range(len(msgs)):
        valid, record_level = out.outputs[i * per_event : i * per_event + 2]
        assert valid.topic == "t.changes.valid" and header_value(valid.headers, H_TIER) == "valid"
        assert (valid.key, valid.value) == (record_level.key, record_level.value)
        assert valid.headers[:-1] == record_level.headers[:-1]
    again = [f.message(f.change("encounter")) for _ in range(3)]
    off = processor(f, record_topics).process(raw(again))
    assert off.accepted == 3 and not [o for o in off.outputs if o.topic == "t.changes.valid"]


def test_check_pool_gives_the_in_process_verdicts(tmp_path: Path) -> None:
    """Stage 1 in a worker process (the worker's default) rejects and accepts exactly like the
    in-process path, in input order, on the whole bad-input corpus and valid events."""
    import asyncio

    from streams.checkpool import CheckPool
    from streams.config import StreamsConfig

    f = EventFactory()
    msgs = corpus_stream(f.valid(20), bad_inputs(f))
    now = datetime.now(UTC)
    expected = processor(f).check(msgs, now)
    registry = tmp_path / "keys.json"
    registry.write_bytes(f.key_registry().to_json())
    config = StreamsConfig(
        kafka=KafkaConnection(bootstrap="unused:9092"),
        development=True,  # the registry holds development-derived keys
        pseudonym_key=DEV_PSEUDONYM_KEY,
        key_registry_path=str(registry),
    )
    pool = CheckPool(1, config)
    try:

        async def chunked() -> list[object]:
            out: list[object] = []
            async for _part, verdicts in pool.chunks(msgs, now, 16):
                out += verdicts
            return out

        assert pool.check_sync(msgs, now) == expected
        assert asyncio.run(chunked()) == expected
    finally:
        pool.close()


def test_check_pool_recovers_when_a_process_dies() -> None:
    """A check process killed (OOM, operator) is replaced and the batch is checked in full."""
    import asyncio
    import os
    import signal

    from streams.checkpool import CheckPool
    from streams.config import StreamsConfig
    from tests.helpers import wait_until

    f = EventFactory()
    msgs = raw(list(f.valid(12)))
    now = datetime.now(UTC)
    config = StreamsConfig(
        kafka=KafkaConnection(bootstrap="unused:9092"),
        development=True,
        pseudonym_key=DEV_PSEUDONYM_KEY,
        key_registry_seed=KEY_SEED,
    )
    pool = CheckPool(1, config)
    try:
        expected = pool.check_sync(msgs, now)
        assert all(isinstance(v, Accepted) for v in expected)
        executor = pool._executor
        for pid in list(executor._processes):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: executor._broken, timeout=30, message="pool marked broken")

        async def checked() -> list[object]:
            out: list[object] = []
            async for _part, verdicts in pool.chunks(msgs, now, 4):
                out += verdicts
            return out

        assert asyncio.run(checked()) == expected
        assert pool._executor is not executor
    finally:
        pool.close()
