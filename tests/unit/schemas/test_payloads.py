"""Payload rules: identifiers, code lists, dates relative to an injected now, the upcaster."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    CURRENT_MAJOR,
    ContractViolation,
    Reason,
    RecordType,
    model_for,
    parse_payload,
    upcast,
)
from schemas.codes import FULLY_IMMUNISED_UNDER_1, NOTIFIABLE_DISEASES, VACCINES, icd10_known
from schemas.examples import example_data
from schemas.payloads.vital_events import DeathV1

NOW = datetime(2025, 7, 1, tzinfo=UTC)


def reason_of(record_type: str, data: dict[str, object], major: int | None = None) -> Reason:
    with pytest.raises(ContractViolation) as info:
        parse_payload(record_type, major or CURRENT_MAJOR[RecordType(record_type)], data, now=NOW)
    return info.value.reason


def with_(record_type: str, **changes: object) -> dict[str, object]:
    return {**example_data(record_type), **changes}


@pytest.mark.parametrize("rt", list(RecordType))
def test_examples_are_valid_at_every_major(rt: RecordType) -> None:
    for major in (1, CURRENT_MAJOR[rt]):
        model = model_for(rt, major)
        payload = parse_payload(rt, major, example_data(rt, major), now=NOW)
        assert isinstance(payload, model)
        assert model.model_config.get("extra") == "forbid"
        assert model.model_config.get("frozen") is True


@pytest.mark.parametrize(
    ("hid", "ok"),
    [("0123456789", True), ("7900000001", True), ("012345678", False), ("01234567890", False),
     ("AB12345678", False), ("0000000000", False), ("０１２３４５６７８９", False)],
)  # fmt: skip
def test_health_id_is_ten_ascii_digits(hid: str, ok: bool) -> None:
    data = with_("immunization", health_id=hid)
    if ok:
        parse_payload("immunization", 1, data, now=NOW)
    else:
        assert reason_of("immunization", data) is Reason.BAD_HEALTH_ID


@pytest.mark.parametrize(
    ("cccd", "sex", "birth", "reason"),
    [
        ("001090012345", "male", "1990-03-02", None),
        ("079305001234", "female", "2005-01-01", None),
        ("001190012345", "male", "1990-03-02", Reason.BAD_CITIZEN_ID),  # encodes a woman
        ("001089012345", "male", "1990-03-02", Reason.BAD_CITIZEN_ID),  # encodes 1989
        ("003090012345", "male", "1990-03-02", Reason.BAD_CITIZEN_ID),  # 03 is not a province
        ("00109001234", "male", "1990-03-02", Reason.BAD_CITIZEN_ID),  # 11 digits
        ("101090012345", "male", "1990-03-02", Reason.BAD_CITIZEN_ID),
    ],
)
def test_citizen_id_province_century_and_sex(
    cccd: str, sex: str, birth: str, reason: Reason | None
) -> None:
    data = with_("person", citizen_id=cccd, sex=sex, birth_date=birth)
    if reason is None:
        parse_payload("person", 1, data, now=NOW)
    else:
        assert reason_of("person", data) is reason


def test_icd10_subset_and_subcategories() -> None:
    assert icd10_known("A09") and icd10_known("E11.9") and icd10_known("U07.1")
    assert not icd10_known("E11.") and not icd10_known("e11") and not icd10_known("Q99")
    assert reason_of("encounter", with_("encounter", diagnoses=["Q99"])) is Reason.BAD_ICD10
    assert reason_of("death", with_("death", cause_icd10="I10-1")) is Reason.BAD_ICD10


def test_code_lists_hang_together() -> None:
    assert set(FULLY_IMMUNISED_UNDER_1) <= set(VACCINES)
    for vaccine, dose in FULLY_IMMUNISED_UNDER_1.items():
        assert dose <= VACCINES[vaccine][1]
    for _, icd in NOTIFIABLE_DISEASES.values():
        assert icd10_known(icd), icd


def test_dose_number_within_the_programme() -> None:
    parse_payload("immunization", 1, with_("immunization", vaccine="OPV", dose_number=3), now=NOW)
    data = with_("immunization", vaccine="BCG", dose_number=2)
    assert reason_of("immunization", data) is Reason.OUT_OF_RANGE


@given(st.dates())
def test_dates_are_judged_against_the_injected_now(d: object) -> None:
    data = with_("disease_case", onset_date=str(d))
    today_in_vietnam = "2025-07-01"
    if str(d) <= today_in_vietnam:
        parse_payload("disease_case", 1, data, now=NOW)
    else:
        assert reason_of("disease_case", data) is Reason.FUTURE_DATE


def test_today_is_vietnam_time() -> None:
    late_evening_utc = datetime(2025, 6, 30, 20, tzinfo=UTC)  # already 1 July in Hà Nội
    data = with_("disease_case", onset_date="2025-07-01")
    parse_payload("disease_case", 1, data, now=late_evening_utc)


def test_snapshot_period_rules() -> None:
    assert reason_of("bed_snapshot", with_("bed_snapshot", period="2025-13")) is Reason.BAD_FORMAT
    late = with_("bed_snapshot", period="2025-08", as_of="2025-06-30")
    assert reason_of("bed_snapshot", late) is Reason.FUTURE_DATE
    early = with_("bed_snapshot", period="2025-02", as_of="2025-01-31")
    assert reason_of("bed_snapshot", early) is Reason.INCONSISTENT
    full = with_("bed_snapshot", beds_total=2, beds_occupied=3)
    assert reason_of("bed_snapshot", full) is Reason.INCONSISTENT


def test_strict_json_types() -> None:
    assert reason_of("immunization", with_("immunization", dose_number="2")) is Reason.WRONG_TYPE
    assert (
        reason_of("chronic_followup", with_("chronic_followup", on_treatment=1))
        is Reason.WRONG_TYPE
    )
    assert reason_of("encounter", with_("encounter", encounter_type="spa")) is Reason.UNKNOWN_CODE
    staff = example_data("staff_snapshot")
    staff["counts"] = {**staff["counts"], "surgeon": 1}
    assert reason_of("staff_snapshot", staff) is Reason.SCHEMA_VIOLATION


def test_blood_pressure_rules_in_both_majors() -> None:
    v1 = example_data("encounter", 1)
    v1["vitals"] = {"systolic_bp_mmhg": 80, "diastolic_bp_mmhg": 90}
    assert reason_of("encounter", v1, major=1) is Reason.INCONSISTENT
    v1["vitals"] = {"systolic_bp_mmhg": 120}
    assert reason_of("encounter", v1, major=1) is Reason.INCONSISTENT


def test_infant_flag() -> None:
    infant = parse_payload("death", 1, with_("death", age_years=None, age_days=40), now=NOW)
    adult = parse_payload("death", 1, example_data("death"), now=NOW)
    assert isinstance(infant, DeathV1) and isinstance(adult, DeathV1)
    assert infant.infant and not adult.infant


def test_encounter_upcast_v1_to_v2() -> None:
    v1 = example_data("encounter", 1)
    major, v2 = upcast("encounter", 1, v1)
    assert major == 2
    assert v2["vitals"]["blood_pressure"] == {"systolic_mmhg": 150, "diastolic_mmhg": 95}
    assert "systolic_bp_mmhg" not in v2["vitals"]
    assert v2 == example_data("encounter", 2)
    assert "systolic_bp_mmhg" in v1["vitals"]  # input untouched
    parse_payload("encounter", 2, v2, now=NOW)
    assert upcast("encounter", 2, v2) == (2, v2)
    assert upcast("person", 1, example_data("person"))[0] == 1
    no_vitals = {k: v for k, v in v1.items() if k != "vitals"}
    assert upcast("encounter", 1, no_vitals) == (2, no_vitals)
    with pytest.raises(ContractViolation) as info:
        upcast("encounter", 3, v1)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA_MAJOR


@given(
    st.integers(50, 300),
    st.integers(20, 200),
    st.none() | st.integers(20, 250),
)
def test_upcast_preserves_valid_v1(systolic: int, diastolic: int, pulse: int | None) -> None:
    v1 = example_data("encounter", 1)
    v1["vitals"] = {"systolic_bp_mmhg": systolic, "diastolic_bp_mmhg": diastolic}
    if pulse is not None:
        v1["vitals"]["pulse_bpm"] = pulse
    try:
        parse_payload("encounter", 1, v1, now=NOW)
    except ContractViolation:
        return
    _, v2 = upcast("encounter", 1, v1)
    parse_payload("encounter", 2, v2, now=NOW)
