"""No single input stops the stream worker or a sink (Hypothesis fuzzing).

Valid signed events are mutated — bit flips, huge and negative numbers, long and odd strings,
extra and repeated headers, oversized values, other keys and partitions — and fed through the
worker's processing (``streams.pipeline.BatchProcessor``, both stages) and every sink encoder
(the worker's own outputs plus mutated tier records, aggregates and dead letters). Nothing may
raise, and every input must end accepted, dropped as an exact duplicate, or dead-lettered with
a reason."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import KafkaMessage
from schemas.dlq import H_REASON, header_value
from sinks.encode import encode_aggregates, encode_dlq, tier_encoder
from sinks.testing import FakeMessage
from streams.pipeline import BatchProcessor, OutMessage
from streams.validate import RawMessage
from tests.data.bad_inputs import RECORD_TYPES, EventFactory
from tests.unit.streams.test_validate import processor, raw

FACTORY = EventFactory()
VALID = [FACTORY.message(FACTORY.change(rt)) for rt in RECORD_TYPES for _ in range(2)]

ODD_STRINGS = st.sampled_from(
    [
        "",
        "\n",
        "\x00",
        "0123456789\n",
        "٠١٢٣٤٥٦٧٨٩",
        "０１２３４５６７８９",
        "\ud7ff\ue000",
        "x" * 70_000,
        "🙂" * 1000,
        "null",
        "station/00004\r",
    ]
)
HUGE_NUMBERS = st.sampled_from(
    [2**63, 2**64 - 1, 2**63 - 1, -(2**63), -1, 0, 2**53, 1e308, -1e308, 5e-324, 1.5]
)
JSON_VALUES = st.one_of(
    ODD_STRINGS,
    HUGE_NUMBERS,
    st.none(),
    st.booleans(),
    st.lists(st.integers(-(2**63), 2**64 - 1), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**64 - 1), max_size=3),
)


def _json(value: Any) -> bytes:
    """JSON text of ``value``; integers orjson refuses (beyond 64 bits) written by hand."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return str(value).encode()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


@st.composite
def mutated(draw: st.DrawFn) -> tuple[KafkaMessage, bool]:
    """(a mutated message, publish on the wrong partition)."""
    msg = draw(st.sampled_from(VALID))
    key, value, headers = msg.key, msg.value, list(msg.headers)
    kind = draw(
        st.sampled_from(
            ["bitflip", "field", "headers", "repeat", "oversize", "key", "none", "truncate"]
        )
    )
    rng = random.Random(draw(st.integers(0, 2**32)))
    if kind == "bitflip":
        data = bytearray(value)
        for _ in range(draw(st.integers(1, 4))):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        value = bytes(data)
    elif kind == "field":
        obj = orjson.loads(value)
        path = draw(st.sampled_from(_paths(obj)))
        _set(obj, path, draw(JSON_VALUES))
        value = orjson.dumps(obj)
    elif kind == "headers":
        extra = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["ce_x", "tuyen_reason", "x", "ce_id", "content-type"]),
                    st.binary(max_size=2000),
                ),
                min_size=1,
                max_size=40,
            )
        )
        headers += extra
    elif kind == "repeat":
        headers = headers * draw(st.integers(2, 5))
    elif kind == "oversize":
        value = value + b" " * draw(st.sampled_from([300_000, 1_100_000]))
    elif kind == "key":
        key = draw(st.sampled_from([b"", b"0123456789\n", b"\xff\xfe", b"x" * 5000]))
    elif kind == "truncate":
        value = value[: draw(st.integers(0, len(value)))]
    return KafkaMessage(key, value, headers), draw(st.booleans()) and kind != "none"


def _raw(batch: list[tuple[KafkaMessage, bool]]) -> list[RawMessage]:
    return [raw([m], start=i, wrong_partition=wrong)[0] for i, (m, wrong) in enumerate(batch)]


def _fake(m: OutMessage, offset: int) -> FakeMessage:
    return FakeMessage(m.topic, 0, offset, m.value, m.key, m.headers)


def _rows(encoded: dict[str, pa.Table]) -> int:
    return sum(t.num_rows for t in encoded.values())


def _sinks_take(outputs: list[OutMessage], extra_tier: list[FakeMessage]) -> None:
    """Every sink encoder on the worker's outputs (and hostile extras): no exception, one row
    (stored or dead-lettered) per message."""
    for tier in ("district", "province", "national"):
        msgs = [_fake(m, i) for i, m in enumerate(outputs) if m.topic == f"t.tier.{tier}"]
        msgs += extra_tier
        assert _rows(tier_encoder(tier)(msgs)) == len(msgs)
    dlq = [_fake(m, i) for i, m in enumerate(outputs) if m.topic == "t.station.changes.dlq"]
    assert _rows(encode_dlq(dlq)) == len(dlq)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(mutated(), min_size=1, max_size=12), st.data())
def test_mutated_events_never_escape_the_worker_or_the_sinks(
    batch: list[tuple[KafkaMessage, bool]], data: st.DataObject
) -> None:
    p: BatchProcessor = processor()
    msgs = _raw(batch)
    out = p.process(msgs)  # must not raise
    assert out.accepted + out.duplicates + sum(out.rejected.values()) == len(msgs)
    dlq = [m for m in out.outputs if m.topic == "t.station.changes.dlq"]
    assert len(dlq) == sum(out.rejected.values())
    assert all(header_value(m.headers, H_REASON) in out.rejected for m in dlq)
    rejections = [m for m in out.outputs if m.topic == "t.station.changes.rejections"]
    assert len(rejections) == len(dlq), "one payload-free rejection per dead letter"
    # district, province, national (changes.valid is off: StreamsConfig.publish_valid)
    assert len(out.outputs) == 3 * out.accepted + len(dlq) + len(rejections)
    for m in dlq:
        size = len(m.key or b"") + len(m.value or b"") + sum(len(k) + len(v) for k, v in m.headers)
        assert size < 1_000_000, "every dead letter fits the producer's message limit"
    # hostile tier records (a buggy or compromised upstream): the sinks survive them too
    tier_value = next((m.value for m in out.outputs if m.topic == "t.tier.district"), None)
    extra: list[FakeMessage] = []
    if tier_value is not None:
        rec = orjson.loads(tier_value)
        for path in data.draw(st.lists(st.sampled_from(_paths(rec)), max_size=4)):
            bad = orjson.loads(tier_value)
            _set(bad, path, data.draw(JSON_VALUES))
            extra.append(FakeMessage("t.tier.district", 0, 10_000 + len(extra), orjson.dumps(bad)))
    _sinks_take(out.outputs, extra)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.binary(max_size=40), st.sampled_from([b"01|2026-01|x", b"VN|2026|e"])),
            st.one_of(
                st.none(),
                st.binary(max_size=60),
                JSON_VALUES.map(_json),
                st.sampled_from([b"1e400", b"-1" + b"9" * 400, b'{"value": 99e999}']),
            ),
            st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=30)), max_size=5),
            st.sampled_from([0, -1, 2**62, 1_772_000_000_000]),
        ),
        max_size=10,
    )
)
def test_aggregate_and_dlq_encoders_take_anything(
    msgs: list[tuple[bytes, bytes | None, list[tuple[str, bytes]], int]],
) -> None:
    fakes = [
        FakeMessage("t.x", 0, i, value, key, headers, ts)
        for i, (key, value, headers, ts) in enumerate(msgs)
    ]
    assert _rows(encode_aggregates(fakes)) == len(fakes)
    with_dlq_headers = [
        FakeMessage(
            f.topic() or "",
            0,
            i,
            f.value(),
            f.key(),
            [
                *(f.headers() or []),
                ("tuyen_source_partition", b"99999999999999999999999"),
                ("tuyen_source_offset", b"-9223372036854775809"),
                ("tuyen_rejected_at", b"not a time"),
            ],
            f.timestamp()[1],
        )
        for i, f in enumerate(fakes)
    ]
    assert _rows(encode_dlq(fakes + with_dlq_headers)) == 2 * len(fakes)
