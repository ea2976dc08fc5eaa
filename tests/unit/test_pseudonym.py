"""The national tier never carries a direct identifier (property test) and pseudonyms are keyed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.tier import TierRecord
from streams.pseudonymise import Pseudonymiser
from streams.route import encode_record, route, tier_headers

PSEUDO = Pseudonymiser("unit-test-key")
NOW = datetime(2026, 1, 10, 3, tzinfo=UTC)

health_ids = st.from_regex(r"[1-9][0-9]{9}", fullmatch=True)
words = st.text(alphabet="abcdeghiklmnopqrstuvxyĐăâêôơưàáạảãệộ ", min_size=6, max_size=30).filter(
    lambda s: s.strip() and len(s.strip()) >= 6
)
phones = st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True)
citizen_ids = st.from_regex(r"0[0-9]{11}", fullmatch=True)
birth_dates = st.dates(date(1920, 1, 1), date(2025, 12, 31))


def record(record_type: str, record_id: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """A tier record as the pipeline carries it: the fields of a validated TierRecord."""
    return dict(
        TierRecord(
            event_id="019ac0b7-5d2e-7a3c-9f41-3b8e2d6c1a57",
            record_type=record_type,
            record_id=record_id,
            record_key=key,
            op="upsert",
            record_version=1,
            station_seq=1,
            schema_major=1,
            source_major=1,
            event_time=NOW,
            received_time=NOW,
            processed_time=NOW,
            event_month="2026-01",
            service_month="2026-01",
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


def national_texts(rec: dict[str, Any]) -> list[str]:
    """Every string of the national output: value, key and headers (rebuilt from the record,
    whatever the raw message carried)."""
    routed = next(r for r in route(rec, PSEUDO) if r.tier == "national")
    value = orjson.loads(encode_record(routed.record))
    texts = [*strings(value), routed.key]
    texts += [v.decode() for _, v in tier_headers(routed)]
    return texts


def _carried_anyway() -> str:
    """Every string the national copy of a person, birth and encounter record carries whatever
    the person (record types, codes, unit names, ...): a generated name or address that is a
    piece of it (say "encoun") is not an identifier leaking."""
    texts: list[str] = []
    for rt in ("person", "birth", "encounter"):
        rec = record(rt, "1000000000", "1000000000", {"health_id": "1000000000"})
        texts += national_texts(rec)
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
)
def test_no_direct_identifier_reaches_the_national_stream(
    hid: str,
    cid: str,
    name: str,
    address: str,
    phone: str,
    born: date,
    child: str,
    reason: str,
) -> None:
    person = record(
        "person",
        hid,
        hid,
        {
            "health_id": hid,
            "citizen_id": cid,
            "full_name": name,
            "sex": "female",
            "birth_date": born.isoformat(),
            "ethnicity": "01",
            "residence_commune": "00004",
            "street_address": address,
            "phone": phone,
        },
    )
    birth = record(
        "birth",
        f"{hid}:b-1",
        hid,
        {
            "mother_health_id": hid,
            "child_health_id": child,
            "birth_date": born.isoformat(),
            "place": "facility",
            "live_birth": True,
        },
    )
    encounter = record(
        "encounter",
        f"{hid}:{name.replace(' ', '')[:20] or 'x'}",
        hid,
        {
            "health_id": hid,
            "encounter_date": "2026-01-09",
            "referral": {"to_level": "district", "reason": reason},
        },
    )
    identifiers = [hid, cid, name.strip(), address.strip(), phone, born.isoformat(), child]
    for rec in (person, birth, encounter):
        texts = national_texts(rec)
        for text in texts:
            for ident in identifiers:
                assert ident not in text, (rec["record_type"], ident, text)
    national_person = next(r for r in route(person, PSEUDO) if r.tier == "national").record
    assert national_person["pseudonymised"]
    assert national_person["data"] is not None
    assert national_person["data"]["birth_month"] == born.isoformat()[:7]
    assert national_person["data"]["health_id"] == PSEUDO.pseudonym(hid)
    assert not person["pseudonymised"], "the record-level copy is left as it is"
    TierRecord.model_validate(national_person)


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
