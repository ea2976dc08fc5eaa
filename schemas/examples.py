"""Valid example payloads and changes for every record type (docs, tests, vendors).

``example_data(rt)`` is a JSON-shaped after-image that validates; ``example_change`` wraps it
in an unsigned :class:`RecordChange` (sign it with :func:`schemas.signing.sign`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from schemas.envelope import RecordChange, make_change
from schemas.registry import CURRENT_MAJOR, RESOURCE_OF, record_type_of, resource_record_id

EXAMPLE_HEALTH_ID = "0123456789"
EXAMPLE_STATION = "00004"


def example_data(
    record_type: str,
    major: int | None = None,
    *,
    health_id: str = EXAMPLE_HEALTH_ID,
    on: date = date(2025, 1, 15),
) -> dict[str, Any]:
    """A valid payload of ``record_type`` at ``major`` (current when ``None``), dated ``on``."""
    rt = record_type_of(record_type)
    major = major or CURRENT_MAJOR[rt]
    d = on.isoformat()
    period = d[:7]
    if rt == "person":
        return {
            "health_id": health_id,
            "citizen_id": "001090012345",
            "full_name": "Nguyễn Văn An",
            "sex": "male",
            "birth_date": "1990-03-02",
            "ethnicity": "01",
            "residence_commune": "00004",
            "street_address": "Số 5, ngõ 12, thôn Đông",
            "phone": "0912345678",
            "registration_date": d,
        }
    if rt == "encounter":
        if major == 1:
            vitals: dict[str, Any] = {"systolic_bp_mmhg": 150, "diastolic_bp_mmhg": 95}
        else:
            vitals = {"blood_pressure": {"systolic_mmhg": 150, "diastolic_mmhg": 95}}
        vitals.update({"pulse_bpm": 82, "temperature_c": 36.8, "weight_kg": 61.5})
        return {
            "health_id": health_id,
            "encounter_date": d,
            "encounter_type": "outpatient",
            "diagnoses": ["I10", "E11.9"],
            "vitals": vitals,
            "referral": {"to_level": "district", "reason": "uncontrolled blood pressure"},
        }
    if rt == "immunization":
        return {"health_id": health_id, "vaccine": "DTP_HEPB_HIB", "dose_number": 2, "date": d}
    if rt == "chronic_followup":
        if major == 1:
            return {
                "health_id": health_id,
                "condition": "hypertension",
                "visit_date": d,
                "controlled": True,
                "measurements": {"systolic_bp_mmhg": 132, "diastolic_bp_mmhg": 84},
            }
        return {
            "health_id": health_id,
            "condition": "hypertension",
            "visit_date": d,
            "measurements": {"blood_pressure": {"systolic_mmhg": 132, "diastolic_mmhg": 84}},
            "on_treatment": True,
        }
    if rt == "chronic_enrolment":
        return {
            "health_id": health_id,
            "condition": "hypertension",
            "enrolment_date": d,
            "diagnosis_date": d,
            "treatment_start_date": d,
        }
    if rt == "report_submission":
        return {"period": period, "remarks": "đã đối chiếu sổ A1"}
    if rt == "antenatal_visit":
        return {"health_id": health_id, "visit_number": 2, "gestational_weeks": 20, "visit_date": d}
    if rt == "birth":
        return {
            "mother_health_id": health_id,
            "child_health_id": "0123456790",
            "birth_date": d,
            "place": "facility",
            "attendant": "midwife",
            "weight_grams": 3100,
            "child_sex": "female",
            "live_birth": True,
        }
    if rt == "death":
        return {"health_id": health_id, "death_date": d, "cause_icd10": "I64", "age_years": 78}
    if rt == "disease_case":
        return {
            "health_id": health_id,
            "disease": "DENGUE",
            "onset_date": d,
            "classification": "probable",
        }
    if rt == "medicine_dispensed":
        return {
            "health_id": health_id,
            "dispensed_date": d,
            "encounter_local_id": "v-0001",
            "items": [
                {
                    "medicine_code": "40.678",
                    "name": "Amlodipin",
                    "strength": "5mg",
                    "route": "1.01",
                    "unit": "Viên",
                    "quantity": 30.0,
                    "dosage": "1 viên/lần * 1 lần/ngày * 30 ngày [1 viên/ngày]",
                    "essential_medicine": "AMLODIPINE_5_TAB",
                }
            ],
        }
    if rt == "person_transfer":
        return {
            "health_id": health_id,
            "to_station": "00007",
            "transfer_date": d,
            "person_record_version": 1,
            "reason": "moved",
        }
    snap: dict[str, Any] = {"period": period, "as_of": d}
    if rt == "staff_snapshot":
        snap["counts"] = {
            "doctor": 1,
            "assistant_doctor": 1,
            "ob_paediatric_assistant_doctor": 0,
            "nurse": 2,
            "midwife": 1,
            "pharmacist": 1,
            "village_health_worker": 6,
        }
    elif rt == "bed_snapshot":
        snap.update(beds_total=5, beds_occupied=2)
    elif rt == "equipment_snapshot":
        snap["items"] = [
            {"item": "BP_MONITOR", "quantity": 2, "working": 2},
            {"item": "GLUCOMETER", "quantity": 1, "working": 0},
        ]
    else:
        snap["items"] = [
            {"medicine": "AMLODIPINE_5_TAB", "on_hand": 300, "stock_out": False},
            {"medicine": "ORS_SACHET", "on_hand": 0, "stock_out": True},
        ]
    return snap


def example_record_id(
    record_type: str,
    *,
    health_id: str = EXAMPLE_HEALTH_ID,
    station: str = EXAMPLE_STATION,
    period: str = "2025-01",
    local_id: str = "v-0001",
) -> str:
    """A record id of the right shape for ``record_type``."""
    rt = record_type_of(record_type)
    if rt == "person":
        return health_id
    if rt in RESOURCE_OF:
        return resource_record_id(rt, station, period)
    return f"{health_id}:{local_id}"


def example_change(
    record_type: str,
    *,
    op: str = "upsert",
    major: int | None = None,
    station: str = EXAMPLE_STATION,
    health_id: str = EXAMPLE_HEALTH_ID,
    on: date = date(2025, 1, 15),
    record_version: int = 1,
    station_seq: int = 1,
    signer: str | None = None,
    event_id: str | None = None,
) -> RecordChange:
    """An unsigned, valid change (time = noon UTC of ``on``; checked with now = that time)."""
    when = datetime.combine(on, time(12), tzinfo=UTC)
    data = example_data(record_type, major, health_id=health_id, on=on)
    rid = example_record_id(record_type, health_id=health_id, station=station, period=str(on)[:7])
    return make_change(
        station=station,
        record_type=record_type,
        record_id=rid,
        op=op,
        record_version=record_version,
        station_seq=station_seq,
        signer=signer or f"hw-{station}-1",
        data=data if op == "upsert" else None,
        time=when,
        event_id=event_id,
        schema_major=major,
        now=when,
    )
