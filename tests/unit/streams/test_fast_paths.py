"""The stream worker's shortcuts (issue 17: the cost per event) give what the plain ways give:
the pseudonymiser's keyed HMAC state copied per digest and its last pseudonym remembered; the
national allow-list compiled per record type; faust's events turned into RawMessage objects in one
loop; the tier headers' repeating pairs remembered."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import faust
from hypothesis import given
from hypothesis import strategies as st

from schemas.examples import example_data
from schemas.hierarchy import VN_TZ
from schemas.national import NATIONAL_FIELDS, Derived, FieldRule, Keep, Month, Nested, Pseudonym
from schemas.registry import RecordType
from streams.faustio import kafka_time, raw_headers, raw_messages
from streams.national import _DERIVED, _month_of, _received, national_data
from streams.pseudonymise import Pseudonymiser
from streams.route import _PAIRS, route, route_headers, tier_headers
from streams.validate import Accepted, RawMessage
from tests.data.bad_inputs import EventFactory
from tests.unit.streams.test_validate import processor, raw


@given(st.binary(min_size=1, max_size=80), st.text(max_size=40), st.text(max_size=20))
def test_a_pseudonymisers_digest_is_hmac_sha256(key: bytes, value: str, domain: str) -> None:
    """The keyed HMAC state copied per digest gives HMAC-SHA256(key, ``<domain>:<value>``)."""
    p = Pseudonymiser(key)
    expected = hmac.digest(key, f"{domain}:{value}".encode(), "sha256")
    assert p.digest(value, domain) == expected
    assert p.digest(value, domain) == expected  # the keyed state is not consumed
    assert p.pseudonym(value, domain) == "p" + expected[:16].hex()


@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.sampled_from(["a", "b"]))))
def test_the_last_pseudonym_remembered_is_never_anothers(calls: list[tuple[str, str]]) -> None:
    """Any sequence of (value, domain): each answer is that pair's HMAC, whatever came before."""
    p = Pseudonymiser(b"key")
    for value, domain in calls:
        expected = hmac.digest(b"key", f"{domain}:{value}".encode(), "sha256")[:16].hex()
        assert p.pseudonym(value, domain) == "p" + expected


_SKIP = object()


def _reduce(value: Any, fields: dict[str, FieldRule], p: Pseudonymiser) -> Any:
    if isinstance(value, list):
        return [_reduce(v, fields, p) for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return None
    out = {}
    for name, rule in fields.items():
        if name in value:
            got = _apply(value[name], rule, p)
            if got is not _SKIP:
                out[name if not isinstance(rule, Month) else rule.out] = got
    return out


def _apply(value: Any, rule: FieldRule, p: Pseudonymiser) -> Any:
    """One rule applied to one value (the allow-list before it was compiled)."""
    if isinstance(rule, Keep):
        return value
    if isinstance(rule, Pseudonym):
        return p.pseudonym(value) if isinstance(value, str) else None
    if isinstance(rule, Month):
        return _month_of(value)
    if isinstance(rule, Nested):
        return _reduce(value, dict(rule.fields), p)
    return _SKIP  # Derived: computed from the whole after-image


def _national_data_by_the_rules(rt: str, data: dict, record: dict, p: Pseudonymiser) -> dict:
    """The allow-list applied rule by rule (``national_data`` before it was compiled)."""
    out = {}
    for name, rule in NATIONAL_FIELDS.get(rt, {}).items():
        if isinstance(rule, Derived):
            out[rule.out] = _DERIVED[rule.how](data, record, p)
        elif name in data:
            out[rule.out if isinstance(rule, Month) else name] = _apply(data[name], rule, p)
    return out


def test_the_compiled_allow_list_is_the_rules() -> None:
    p = Pseudonymiser(b"key")
    for rt in RecordType:
        data = example_data(rt.value)
        record = {"record_key": "0123456789", "record_type": rt.value}
        expected = _national_data_by_the_rules(rt.value, data, record, p)
        assert national_data(rt.value, data, record, p) == expected
        assert list(national_data(rt.value, data, record, p)) == list(expected)
    assert national_data("no_such_type", {"health_id": "0123456789"}, {}, p) == {}


_codes = st.sampled_from(["00004", "00005", "001", "002", "01", "VN"])


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.sampled_from(["2026-09", "2026-10"]),
            st.lists(  # a unit's code names one tier (5, 3, 2 digits, VN)
                st.tuples(st.sampled_from(["station", "district"]), _codes),
                max_size=4,
                unique_by=lambda u: u[1],
            ),
            st.dictionaries(st.sampled_from(["visits", "cases", "doses"]), st.integers(-2, 3)),
        ),
        max_size=6,
    ),
    st.integers(1, 4),
)
def test_a_first_contributions_deltas_added_directly_are_the_same(
    events: list[tuple[int, str, list[tuple[str, str]], dict[str, int]]], partitions: int
) -> None:
    """``DeltaBuilder.add_new`` (stage 2's common case) against ``add`` of ``deltas(None, c)``."""
    from streams.aggregate import DeltaBuilder, deltas

    direct, by_dict = DeltaBuilder(partitions), DeltaBuilder(partitions)
    for offset, (sp, period, units, elements) in enumerate(events):
        current = [period, [list(u) for u in units], elements]
        d = deltas(None, current)
        assert direct.add_new(sp, offset, current, 1_000 + offset) == bool(d)
        if d:
            by_dict.add(sp, offset, d, 1_000 + offset)
    assert direct.drain() == by_dict.drain()


_HEADERS = st.one_of(
    st.none(),
    st.lists(st.tuples(st.sampled_from(["ce_id", "ce_time", "x"]), st.binary(max_size=4))),
    st.lists(st.tuples(st.just("ce_id"), st.binary(max_size=4))).map(tuple),
    st.dictionaries(st.sampled_from(["ce_id", "ce_time"]), st.binary(max_size=4)),
)


@given(
    st.lists(
        st.tuples(
            _HEADERS,
            st.one_of(st.none(), st.just(0.0), st.sampled_from([1.5, 1.5, 1_700_000_000.123])),
            st.one_of(st.none(), st.binary(max_size=4)),
        ),
        max_size=12,
    )
)
def test_raw_messages_are_the_fields_one_by_one(
    specs: list[tuple[Any, float | None, bytes | None]],
) -> None:
    """``raw_messages`` (one loop, a timestamp equal to the one before not converted again)
    gives, per event, ``RawMessage`` of the message's fields through ``raw_headers`` and
    ``kafka_time``; a message without a timestamp gets the time it was read."""
    events = [
        SimpleNamespace(message=faust.types.Message("t", i % 3, i, ts, 0, h, key, b"v", None))  # type: ignore[arg-type]
        for i, (h, ts, key) in enumerate(specs)
    ]
    got = raw_messages(events)
    for e, m in zip(events, got, strict=True):
        msg = e.message
        expected = RawMessage(
            msg.key,
            msg.value,
            raw_headers(msg.headers),
            msg.topic,
            msg.partition,
            msg.offset,
            kafka_time(msg.timestamp) if msg.timestamp else m.timestamp,
        )
        assert m == expected
        assert type(m.headers) is list
        assert m.headers is not msg.headers  # a copy, as raw_headers makes
        assert m.timestamp.tzinfo is not None


def test_route_headers_with_remembered_pairs_are_tier_headers() -> None:
    """``route_headers`` (the pairs that repeat from event to event remembered) gives
    ``tier_headers`` of each routed output: every record type of the corpus, person-level
    and station-level (whose national source is the station), both shapes, the same records
    twice (remembered pairs), and after the memory is cleared (made anew)."""
    f = EventFactory()
    types = ("person", "encounter", "birth", "immunization", "disease_case", "death")
    msgs = [f.message(f.change(rt)) for rt in types]
    msgs.append(f.message(f.change("staff_snapshot", station="00367")))
    p = processor()
    checked = [c for c in p.check(raw(msgs)) if isinstance(c, Accepted)]
    assert len(checked) == len(msgs)
    for tiers in (("district", "province", "national"), ("province", "national")):
        for clear in (False, False, True):
            if clear:
                _PAIRS.clear()
            for c in checked:
                routed = {r.tier: r for r in route(c.record, p.pseudonymiser)}
                nat = routed["national"].record
                got = route_headers(c.record, nat, tiers)
                assert list(got) == [tier_headers(routed[t]) for t in tiers]


@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2000, 1, 2), timezones=st.just(UTC)), st.booleans()
        ),
        max_size=8,
    )
)
def test_the_remembered_receive_time_is_its_month_and_date_in_vietnam(
    calls: list[tuple[datetime, bool]],
) -> None:
    """The national record's receive month and date (remembered for the last receive time,
    the same object) are that instant's in Vietnam, whatever came before."""
    last: datetime | None = None
    for t, again in calls:
        moment = last if again and last is not None else t
        vn = moment.astimezone(VN_TZ)
        assert _received(moment) == (f"{vn.year:04d}-{vn.month:02d}", vn.date().isoformat())
        last = moment
