"""The national tier carries only its allow-list (property tests) and pseudonyms are keyed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import format_time
from schemas.examples import example_data, example_record_id
from schemas.national import (
    NATIONAL_FIELDS,
    STATION_LEVEL_TYPES,
    Derived,
    Month,
    NationalRecord,
    Nested,
)
from schemas.registry import CURRENT_MAJOR, MODELS, RecordType, record_key
from schemas.tier import TierRecord
from schemas.wire import ALLOWED_HEADERS
from sinks.columns import national_columns
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser
from streams.route import H_TIER, encode_record, route, tier_headers

PSEUDO = Pseudonymiser("unit-test-key")
NOW = datetime(2026, 1, 10, 3, tzinfo=UTC)

health_ids = st.from_regex(r"[1-9][0-9]{9}", fullmatch=True)
words = st.text(alphabet="abcdeghiklmnopqrstuvxyĐăâêôơưàáạảãệộ ", min_size=6, max_size=30).filter(
    lambda s: s.strip() and len(s.strip()) >= 6
)
phones = st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True)
citizen_ids = st.from_regex(r"0[0-9]{11}", fullmatch=True)
birth_dates = st.dates(date(1920, 1, 1), date(2025, 12, 31))
moments = st.datetimes(datetime(2024, 1, 1), datetime(2026, 1, 9), timezones=st.just(UTC))


def record(
    record_type: str,
    record_id: str,
    key: str,
    data: dict[str, Any] | None,
    *,
    version: int = 1,
    at: datetime = NOW,
    event_id: str = "019ac0b7-5d2e-7a3c-9f41-3b8e2d6c1a57",
) -> dict[str, Any]:
    """A tier record as the pipeline carries it: the fields of a validated TierRecord."""
    local = at + timedelta(hours=7)
    return dict(
        TierRecord(
            event_id=event_id,
            record_type=record_type,
            record_id=record_id,
            record_key=key,
            op="upsert" if data is not None else "delete",
            record_version=version,
            station_seq=7,
            schema_major=CURRENT_MAJOR[RecordType(record_type)],
            source_major=1,
            event_time=at,
            received_time=at + timedelta(seconds=3),
            processed_time=at + timedelta(seconds=4),
            event_month=local.strftime("%Y-%m"),
            service_month=local.strftime("%Y-%m"),
            station_code="00004",
            station_name="Phường Trúc Bạch",
            district_code="KV001",
            district_name="TTYT khu vực Ba Đình",
            province_code="01",
            province_name="Thành phố Hà Nội",
            signer="hw-00004-1",
            data=data,
        )
    )


def strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (k, *strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return [obj] if isinstance(obj, str) else []


def national_of(rec: dict[str, Any]) -> tuple[dict[str, Any], str, list[tuple[str, bytes]]]:
    routed = next(r for r in route(rec, PSEUDO) if r.tier == "national")
    return orjson.loads(encode_record(routed.record)), routed.key, tier_headers(routed)


def national_texts(rec: dict[str, Any]) -> list[str]:
    """Every string of the national output: value, key and headers (rebuilt from the national
    record, whatever the raw message carried)."""
    value, key, headers = national_of(rec)
    return [*strings(value), key, *(v.decode() for _, v in headers)]


def _carried_anyway() -> str:
    """Every string the national copy of a person, birth and encounter record carries whatever
    the person (record types, codes, unit names, ...): a generated name or address that is a
    piece of it (say "encoun") is not an identifier leaking."""
    texts: list[str] = []
    shapes: dict[str, dict[str, Any]] = {
        "person": {"health_id": "1000000000"},
        "birth": {
            "mother_health_id": "1000000000",
            "place": "facility",
            "attendant": "midwife",
            "weight_grams": 2400,
            "live_birth": True,
        },
        "encounter": {
            "health_id": "1000000000",
            "diagnoses": ["J06"],
            "referral": {"to_level": "district"},
        },
        "immunization": {"health_id": "1000000000", "vaccine": "HEPB_BIRTH", "dose_number": 1},
    }
    for rt, data in shapes.items():
        texts += national_texts(record(rt, "1000000000", "1000000000", data))
    return "\n".join(texts)


CARRIED_ANYWAY = _carried_anyway()
personal_words = words.filter(lambda s: s.strip() not in CARRIED_ANYWAY)


@settings(max_examples=150, deadline=None)
@given(
    hid=health_ids,
    cid=citizen_ids,
    name=personal_words,
    address=personal_words,
    phone=phones,
    born=birth_dates,
    child=health_ids,
    reason=words,
    lot=st.from_regex(r"LOT[A-Z0-9]{6}", fullmatch=True),
    facility=st.from_regex(r"FAC[0-9]{6}", fullmatch=True),
    at=moments,
)
def test_no_identifier_or_exact_date_reaches_the_national_stream(
    hid: str,
    cid: str,
    name: str,
    address: str,
    phone: str,
    born: date,
    child: str,
    reason: str,
    lot: str,
    facility: str,
    at: datetime,
) -> None:
    day = born.isoformat()
    person = record(
        "person",
        hid,
        hid,
        {
            "health_id": hid,
            "citizen_id": cid,
            "full_name": name,
            "sex": "female",
            "birth_date": day,
            "ethnicity": "01",
            "residence_commune": "00004",
            "street_address": address,
            "phone": phone,
        },
        at=at,
    )
    birth = record(
        "birth",
        f"{hid}:b-1",
        hid,
        {
            "mother_health_id": hid,
            "child_health_id": child,
            "birth_date": day,
            "place": "facility",
            "attendant": "midwife",
            "weight_grams": 2400,
            "live_birth": True,
        },
        at=at,
    )
    encounter = record(
        "encounter",
        f"{hid}:{name.replace(' ', '')[:20] or 'x'}",
        hid,
        {
            "health_id": hid,
            "encounter_date": day,
            "diagnoses": ["J06"],
            "referral": {"to_level": "district", "reason": reason, "facility_code": facility},
        },
        at=at,
    )
    dose = record(
        "immunization",
        f"{hid}:d-1",
        hid,
        {"health_id": child, "vaccine": "HEPB_BIRTH", "dose_number": 1, "date": day,
         "lot_number": lot},
        at=at,
    )  # fmt: skip
    identifiers = [hid, cid, name.strip(), address.strip(), phone, day, child, lot, facility]
    identifiers += ["hw-00004-1", "00004", "KV001", "019ac0b7-5d2e-7a3c-9f41-3b8e2d6c1a57"]
    exact = {format_time(at), at.isoformat(), format_time(at + timedelta(seconds=3))}
    for rec in (person, birth, encounter, dose):
        for text in national_texts(rec):
            for ident in [*identifiers, *exact]:
                assert ident not in text, (rec["record_type"], ident, text)
        value, _, _ = national_of(rec)
        NationalRecord.model_validate(value)
        assert value["pseudonymised"] and value["station_code"] is None
        assert value["record_version"] != rec["record_version"]
    national_person, _, _ = national_of(person)
    assert national_person["data"] == {"health_id": PSEUDO.pseudonym(hid)}
    assert not person["pseudonymised"], "the record-level copy is left as it is"
    assert national_of(birth)[0]["data"]["birth_month"] == day[:7]
    assert national_of(birth)[0]["data"]["low_birth_weight"] is True


@settings(max_examples=60, deadline=None)
@given(rt=st.sampled_from(list(RecordType)), n=st.integers(0, 10**6), at=moments)
def test_every_record_type_is_reduced_to_its_allow_list(
    rt: RecordType, n: int, at: datetime
) -> None:
    """Whatever the record type, the national copy has exactly the declared envelope, a
    payload within the allow-list (and the national store's columns), no exact time, and
    headers only of the known ``ce_*`` set, rebuilt from the coarsened values."""
    hid = f"{n + 1:010d}"
    rid = example_record_id(rt, health_id=hid, local_id=f"r{n}", station="00004",
                            period=(at + timedelta(hours=7)).strftime("%Y-%m"))  # fmt: skip
    data = example_data(rt, health_id=hid, on=(at + timedelta(hours=7)).date())
    rec = record(rt.value, rid, record_key(rt, rid), data, at=at)
    value, key, headers = national_of(rec)
    assert list(value) == list(NationalRecord.model_fields)
    columns = {c.name for c in national_columns(rt.value)}
    assert set(value["data"]) <= columns
    assert value["record_id"] != rid and key != rec["record_key"]
    assert (value["station_code"] is not None) == (rt.value in STATION_LEVEL_TYPES)
    assert {k for k, _ in headers} == ALLOWED_HEADERS | {H_TIER}
    got = dict(headers)
    assert got["ce_time"].decode().endswith("T17:00:00.000000Z")  # the month's first instant
    assert got["ce_id"].decode() == value["event_id"]
    assert got["ce_subject"].decode() == value["record_id"]
    for text in strings(value) + [v.decode() for _, v in headers]:
        assert rec["event_id"] not in text and "hw-00004-1" not in text
        assert format_time(at) not in text


def test_versions_keep_their_order_and_never_equal_the_record_level_version() -> None:
    ranks = []
    for version in (1, 2, 3, 10, 999):
        data = {"health_id": "0123456789", "encounter_date": "2025-12-01", "diagnoses": ["J06"]}
        rec = record("encounter", "0123456789:v-1", "0123456789", data, version=version)
        national = national_record(rec, PSEUDO)
        assert national["record_version"] != version
        ranks.append(national["record_version"])
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    again = national_record(rec, PSEUDO)
    assert again["event_id"] == national["event_id"], "deterministic: replays deduplicate"
    assert national_record(rec, Pseudonymiser("another"))["event_id"] != national["event_id"]


def test_visit_order_orders_one_persons_visits_in_a_month_only() -> None:
    def order(hid: str, day: str) -> int:
        data = {"health_id": hid, "condition": "hypertension", "visit_date": day}
        rec = record("chronic_followup", f"{hid}:f-{day}", hid, {**data, "controlled": True})
        got = national_record(rec, PSEUDO)["data"]["visit_order"]
        assert isinstance(got, int) and got > 31
        return got

    a = [order("0123456789", f"2025-11-{d:02d}") for d in (3, 9, 28)]
    assert a == sorted(a)
    assert order("0123456789", "2025-12-03") - order("0123456789", "2025-12-01") == 2
    assert order("0123456789", "2025-11-03") != order("0123456780", "2025-11-03")


def test_the_allow_list_names_real_fields_and_every_record_type() -> None:
    assert set(NATIONAL_FIELDS) >= {rt.value for rt in RecordType}
    for rt in RecordType:
        names = {n for model in MODELS[rt].values() for n in model.model_fields}
        for name, rule in NATIONAL_FIELDS[rt.value].items():
            if not isinstance(rule, Derived):
                assert name in names, (rt, name)
            if isinstance(rule, Month):
                assert rule.out.endswith("_month")
            if isinstance(rule, Nested):
                assert rule.fields


def test_pseudonyms_are_keyed_stable_and_linkable() -> None:
    other = Pseudonymiser("another-key")
    assert PSEUDO.pseudonym("0123456789") == PSEUDO.pseudonym("0123456789")
    assert PSEUDO.pseudonym("0123456789") != other.pseudonym("0123456789")
    assert PSEUDO.pseudonym("0123456789") != PSEUDO.pseudonym("0123456789", "citizen_id")
    assert "unit-test-key" not in repr(PSEUDO)


def test_district_and_province_keep_record_level_data() -> None:
    rec = record("person", "0123456789", "0123456789", {"health_id": "0123456789"})
    routed = {r.tier: r for r in route(rec, PSEUDO)}
    assert routed["district"].record is rec and routed["province"].record is rec
    assert routed["national"].key != "0123456789"


def test_a_link_to_the_visit_is_pseudonymised_like_the_visits_record_id() -> None:
    hid, local = "0123456789", "01004_2026_10_BN001_KB001"
    visit = record("encounter", f"{hid}:{local}", hid, {"health_id": hid})
    rx = record(
        "medicine_dispensed",
        f"{hid}:{local}-rx",
        hid,
        {"health_id": hid, "encounter_local_id": local, "items": []},
    )
    nat_visit = next(r for r in route(visit, PSEUDO) if r.tier == "national").record
    nat_rx = next(r for r in route(rx, PSEUDO) if r.tier == "national").record
    assert nat_rx["data"]["encounter_local_id"] == nat_visit["record_id"].split(":")[1]
    assert "BN001" not in str(nat_rx)
