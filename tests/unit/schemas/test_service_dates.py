"""Service-date attribution at the edge: the validator writes each record's service month,
the live aggregates count by it, sites of merged stations, station-head submissions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import (
    ContractViolation,
    DevKeyRegistry,
    Reason,
    ReloadingKeyRegistry,
    Revocation,
    SignerKey,
    StaticKeyRegistry,
    encode,
    sign,
    upcast,
)
from schemas.examples import example_data
from schemas.hierarchy import Hierarchy, Link, PopulationRow, Tier, Unit
from schemas.keys import STATION_HEAD
from schemas.service import service_month
from streams.aggregate import contribution, recompute
from streams.validate import Accepted, RawMessage, Rejected, Validator
from tests.data.bad_inputs import KEY_SEED, EventFactory

NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # 10:00 on 2 November in Hà Nội


def check(v: Validator, change: Any) -> Accepted | Rejected:
    signed = sign(change, DevKeyRegistry(KEY_SEED.encode()).signing_key(change.signer))
    m = encode(signed)
    msg = RawMessage(m.key, m.value, m.headers, "station.changes", 0, 0, NOW)
    return v.check(msg, NOW)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(Hierarchy.default(), DevKeyRegistry(KEY_SEED.encode()))


def test_a_birth_on_the_31st_entered_on_the_2nd_counts_in_its_birth_month(
    validator: Validator,
) -> None:
    f = EventFactory(now=NOW)
    data: dict[str, Any] = {
        "mother_health_id": "1234567890",
        "birth_date": "2026-10-31",
        "place": "facility",
        "attendant": "midwife",
        "live_birth": True,
    }
    got = check(validator, f.change("birth", health_id="1234567890", data=data, when=NOW))
    assert isinstance(got, Accepted)
    assert (got.record["event_month"], got.record["service_month"]) == ("2026-11", "2026-10")
    period, _units, elements = contribution(got.record) or ["", [], {}]
    assert period == "2026-10" and elements["births.total"] == 1


def test_a_phone_correction_keeps_the_person_in_its_month(validator: Validator) -> None:
    f = EventFactory(now=NOW)
    data: dict[str, Any] = {
        "health_id": "1234567891",
        "full_name": "Lê Thị Hoa",
        "sex": "female",
        "birth_date": "1990-05-01",
        "ethnicity": "01",
        "residence_commune": "00004",
        "registration_date": "2026-09-20",
    }
    first = check(validator, f.change("person", health_id="1234567891", data=data,
                                      when=datetime(2026, 9, 20, 3, tzinfo=UTC)))  # fmt: skip
    fixed = {**data, "phone": "0912345678"}
    second = check(validator, f.change("person", health_id="1234567891", data=fixed,
                                       version=2, when=NOW))  # fmt: skip
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    assert first.record["service_month"] == second.record["service_month"] == "2026-09"
    assert second.record["event_month"] == "2026-11"
    # the live counters retract and re-add in the same month: nothing moves
    assert recompute([first.record, second.record]) == recompute([first.record])


def test_medicines_dispensed_count_in_the_month_they_were_dispensed(
    validator: Validator,
) -> None:
    """``medicine_dispensed`` (Decision 130 table 2, or the SDK) is attributed like every
    other record type: dispensed on 31 October, entered on 2 November → October; a
    correction of a quantity entered later keeps it there."""
    f = EventFactory(now=NOW)
    data = example_data("medicine_dispensed", health_id="1234567892", on=date(2026, 10, 31))
    assert data["dispensed_date"] == "2026-10-31"
    first = check(validator, f.change("medicine_dispensed", health_id="1234567892",
                                      data=data, local_id="v1-rx",
                                      when=NOW - timedelta(hours=2)))  # fmt: skip
    assert isinstance(first, Accepted), first
    assert (first.record["event_month"], first.record["service_month"]) == ("2026-11", "2026-10")
    items = [{**data["items"][0], "quantity": data["items"][0]["quantity"] + 1}]
    fixed = check(validator, f.change("medicine_dispensed", health_id="1234567892",
                                      record_id=first.record["record_id"], version=2,
                                      data={**data, "items": items}, when=NOW))  # fmt: skip
    assert isinstance(fixed, Accepted), fixed
    assert fixed.record["service_month"] == "2026-10"


def test_service_month_of_every_record_type() -> None:
    assert service_month("encounter", {"encounter_date": "2026-10-30"}, "2026-12") == "2026-10"
    assert service_month("disease_case", {"onset_date": "2026-09-29"}, "2026-10") == "2026-09"
    assert service_month("staff_snapshot", {"period": "2026-10"}, "2026-11") == "2026-10"
    md = {"dispensed_date": "2026-10-31"}
    assert service_month("medicine_dispensed", md, "2026-11") == "2026-10"
    assert service_month("person", {"health_id": "1"}, "2026-11") == "2026-11"  # no date
    assert service_month("encounter", None, "2026-11") == "2026-11"  # a delete


def test_a_station_closed_by_the_merger_reports_as_a_site_of_its_successor(
    validator: Validator,
) -> None:
    f = EventFactory(now=NOW)
    got = check(validator, f.change("encounter", station="00001", when=NOW - timedelta(days=3)))
    assert isinstance(got, Accepted)
    h = Hierarchy.default()
    successor = h.successor_station("00001", NOW)
    assert successor == "00097"
    rec = got.record
    assert rec["station_code"] == "00001"  # as recorded: the old code
    assert rec["district_code"] == h.lookup(successor, NOW).district.code
    assert rec["province_code"] == "01"


def test_a_station_closed_into_no_station_is_still_refused() -> None:
    units = [
        Unit(Tier.NATIONAL, "VN", "VN", ""),
        Unit(Tier.PROVINCE, "01", "P", ""),
        Unit(Tier.DISTRICT, "001", "D", ""),
        Unit(Tier.STATION, "00004", "S", "", None, date(2025, 7, 1), "001"),
    ]
    links = [Link("01", "VN"), Link("001", "01"), Link("00004", "001", None, date(2025, 7, 1))]
    h = Hierarchy(units, links, [PopulationRow("00004", 100, None, date(2025, 7, 1))])
    v = Validator(h, DevKeyRegistry(KEY_SEED.encode()))
    got = check(v, EventFactory(now=NOW).change("encounter", station="00004", when=NOW))
    assert isinstance(got, Rejected) and got.reason is Reason.CLOSED_STATION


def test_only_the_station_head_submits_the_month(validator: Validator) -> None:
    f = EventFactory(now=NOW)
    data = {"period": "2026-10"}
    head = check(validator, f.change("report_submission", data=data, signer="hw-00004-1"))
    assert isinstance(head, Accepted) and head.record["service_month"] == "2026-10"
    other = check(validator, f.change("report_submission", data=data, signer="hw-00004-2"))
    assert isinstance(other, Rejected) and other.reason is Reason.SIGNER_NOT_AUTHORISED
    with pytest.raises(ContractViolation) as exc:  # a month that has not begun
        f.change("report_submission", data={"period": "2026-12"}, signer="hw-00004-1")
    assert exc.value.reason is Reason.FUTURE_DATE


def test_a_rotated_station_head_key_is_refused_after_its_revocation(tmp_path: Path) -> None:
    """Roles under key rotation, through the validator with its registry file reloaded while
    it runs: the station head rotates from key 2025 to key 2026 (both hold the
    ``station_head`` role); a submission signed with the old key is accepted until the
    broker's receive time reaches the old key's revocation, then refused as
    ``signer_key_revoked`` however early its ce_time and whether or not it names the key,
    while the new key submits; a worker's key without the role signs visits, not the month."""
    f = EventFactory(now=NOW, seed="rotation-test")  # not the published development seed
    head, nurse = "hw-00004-1", "hw-00004-2"
    role = frozenset({STATION_HEAD})

    def entry(signer: str, key_id: str | None, roles: frozenset[str]) -> SignerKey:
        public = bytes(f.signing_key(signer, key_id).verify_key)
        return SignerKey(signer, "00004", public, key_id=key_id, roles=roles)

    keys = [entry(head, "2025", role), entry(head, "2026", role), entry(nurse, None, frozenset())]
    path = tmp_path / "keys.json"
    path.write_bytes(StaticKeyRegistry(keys).to_json())
    registry = ReloadingKeyRegistry(path, 3600)
    v = Validator(Hierarchy.default(), registry)
    month = {"period": "2026-10"}

    def check_at(change: Any, received: datetime) -> Accepted | Rejected:
        m = encode(change)
        return v.check(RawMessage(m.key, m.value, m.headers, "station.changes", 0, 0, received))

    def submission(key_id: str | None) -> Any:
        return f.change("report_submission", data=month, signer=head, key_id=key_id, when=NOW)

    revoked = NOW + timedelta(hours=2)
    before, after = revoked - timedelta(seconds=1), revoked + timedelta(seconds=1)
    assert isinstance(check_at(submission("2025"), before), Accepted)
    path.write_bytes(StaticKeyRegistry(keys, [Revocation(head, revoked, "2025")]).to_json())
    assert registry.check(), "the revocation is read without a restart"
    assert isinstance(check_at(submission("2025"), before), Accepted)  # received before it
    old = check_at(submission("2025"), after)
    assert isinstance(old, Rejected) and old.reason is Reason.SIGNER_KEY_REVOKED, old
    unnamed = sign(
        submission("2025").model_copy(update={"key_id": None}), f.signing_key(head, "2025")
    )
    got = check_at(unnamed, after)  # no key_id: every key is tried, the revoked one refuses
    assert isinstance(got, Rejected) and got.reason is Reason.SIGNER_KEY_REVOKED, got
    new = check_at(submission("2026"), after)
    assert isinstance(new, Accepted) and new.record["service_month"] == "2026-10"
    by_nurse = f.change("report_submission", data=month, signer=nurse, when=NOW)
    refused = check_at(by_nurse, after)
    assert isinstance(refused, Rejected) and refused.reason is Reason.SIGNER_NOT_AUTHORISED
    assert isinstance(check_at(f.change("encounter", signer=nurse, when=NOW), after), Accepted)


def test_chronic_followup_v1_is_upcast_without_its_yes_no_flag() -> None:
    v1 = {
        "health_id": "1234567890",
        "condition": "hypertension",
        "visit_date": "2026-10-01",
        "controlled": True,
        "newly_diagnosed": False,
        "measurements": {"systolic_bp_mmhg": 150, "diastolic_bp_mmhg": 95},
    }
    major, v2 = upcast("chronic_followup", 1, v1)
    assert major == 2
    assert v2 == {
        "health_id": "1234567890",
        "condition": "hypertension",
        "visit_date": "2026-10-01",
        "measurements": {"blood_pressure": {"systolic_mmhg": 150, "diastolic_mmhg": 95}},
    }
    assert orjson.loads(orjson.dumps(v2))  # JSON-shaped
