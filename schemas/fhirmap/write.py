"""The contract's payloads → FHIR R4 resources (JSON-shaped dicts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from schemas import codes
from schemas.fhirmap.systems import (
    BP_DIASTOLIC,
    BP_PANEL,
    BP_POSITION,
    BP_SYSTOLIC,
    CLASS_OF,
    EXT_COMMUNE,
    EXT_ETHNICITY,
    EXT_REGISTRATION_DATE,
    SYS_ACT,
    SYS_CITIZEN_ID,
    SYS_CONDITION_CATEGORY,
    SYS_ESSENTIAL_MEDICINE,
    SYS_ETHNIC_GROUP,
    SYS_FACILITY,
    SYS_HEALTH_ID,
    SYS_ICD10,
    SYS_LOINC,
    SYS_MEDICINE,
    SYS_OBS_CATEGORY,
    SYS_REFERRAL_LEVEL,
    SYS_SOURCE,
    SYS_UCUM,
    SYS_VACCINE,
    VITALS,
    coding,
    concept,
    full_url,
    meta_of,
    record_identifier,
    ref,
    resource_id,
)


# ---- payload → resources -------------------------------------------------------------------
def patient(data: Mapping[str, Any], *, time: datetime | None = None) -> dict[str, Any]:
    """``person/v1`` → Patient."""
    hid = data["health_id"]
    ids = [{"system": SYS_HEALTH_ID, "value": hid}]
    if data.get("citizen_id"):
        ids.append({"system": SYS_CITIZEN_ID, "value": data["citizen_id"]})
    parts = data["full_name"].split()
    name: dict[str, Any] = {"text": data["full_name"]}
    if len(parts) > 1:  # Vietnamese order: family name first
        name.update(family=parts[0], given=parts[1:])
    eth = data["ethnicity"]
    out: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id("pat", hid),
        **meta_of(time),
        "extension": [
            {
                "url": EXT_ETHNICITY,
                "valueCoding": coding(SYS_ETHNIC_GROUP, eth, codes.ETHNIC_GROUPS.get(eth)),
            }
        ],
        "identifier": ids,
        "name": [name],
        "gender": data["sex"],
        "birthDate": data["birth_date"],
        "address": [
            {
                "extension": [{"url": EXT_COMMUNE, "valueCode": data["residence_commune"]}],
                **({"text": data["street_address"]} if data.get("street_address") else {}),
                "country": "VN",
            }
        ],
    }
    if data.get("phone"):
        out["telecom"] = [{"system": "phone", "value": data["phone"]}]
    if data.get("registration_date"):
        out["extension"].append(
            {"url": EXT_REGISTRATION_DATE, "valueDate": data["registration_date"]}
        )
    return out


def _vital(
    rid: str, code: tuple[str, str], subject: dict[str, str], enc: dict[str, str], when: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [concept(SYS_OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "code": concept(SYS_LOINC, *code),
        "subject": subject,
        "encounter": enc,
        "effectiveDateTime": when,
    }


def _quantity(value: float | int, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": SYS_UCUM, "code": unit}


def encounter(
    data: Mapping[str, Any],
    record_id: str,
    subject: Mapping[str, Any],
    *,
    time: datetime | None = None,
    provider: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``encounter/v2`` → Encounter, one Condition per diagnosis (in order: the principal
    first) and one Observation per vital sign."""
    eid = resource_id("enc", record_id)
    pat = ref(subject)
    when = data["encounter_date"]
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        **meta_of(time),
        "identifier": record_identifier(record_id),
        "status": "finished",
        "class": coding(SYS_ACT, CLASS_OF[data.get("encounter_type", "outpatient")]),
        "subject": pat,
        "period": {"start": when},
    }
    if provider is not None:
        enc["serviceProvider"] = ref(provider)
    enc_ref = {"reference": full_url("Encounter", eid)}
    out: list[dict[str, Any]] = [enc]
    diagnosis = []
    for i, code in enumerate(data["diagnoses"], start=1):
        cond = {
            "resourceType": "Condition",
            "id": f"{eid}-dx{i}",
            "category": [
                concept(SYS_CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
            ],
            "code": concept(SYS_ICD10, code, codes.ICD10_SUBSET.get(code[:3])),
            "subject": pat,
            "encounter": enc_ref,
            "recordedDate": when,
        }
        out.append(cond)
        diagnosis.append({"condition": ref(cond), "rank": i})
    enc["diagnosis"] = diagnosis
    if data.get("referral"):
        enc["hospitalization"] = _hospitalization(data["referral"])
    out += _vital_signs(data.get("vitals") or {}, eid, pat, enc_ref, when)
    return out


def _hospitalization(referral: Mapping[str, Any]) -> dict[str, Any]:
    """A referral as the Encounter's discharge disposition (level) and destination."""
    hosp: dict[str, Any] = {
        "dischargeDisposition": {
            **concept(SYS_REFERRAL_LEVEL, referral["to_level"]),
            **({"text": referral["reason"]} if referral.get("reason") else {}),
        }
    }
    if referral.get("facility_code"):
        hosp["destination"] = {
            "identifier": {"system": SYS_FACILITY, "value": referral["facility_code"]}
        }
    return hosp


def _vital_signs(
    vitals: Mapping[str, Any], eid: str, pat: dict[str, str], enc_ref: dict[str, str], when: str
) -> list[dict[str, Any]]:
    """One Observation per vital sign (blood pressure as a panel with components)."""
    out = []
    bp = vitals.get("blood_pressure")
    if bp:
        obs = _vital(f"{eid}-bp", BP_PANEL, pat, enc_ref, when)
        obs["component"] = [
            {
                "code": concept(SYS_LOINC, *BP_SYSTOLIC),
                "valueQuantity": _quantity(bp["systolic_mmhg"], "mm[Hg]"),
            },
            {
                "code": concept(SYS_LOINC, *BP_DIASTOLIC),
                "valueQuantity": _quantity(bp["diastolic_mmhg"], "mm[Hg]"),
            },
        ]
        if bp.get("position"):
            obs["component"].append(
                {"code": concept(SYS_LOINC, *BP_POSITION), "valueString": bp["position"]}
            )
        out.append(obs)
    for name, (loinc, display, unit) in VITALS.items():
        if vitals.get(name) is not None:
            obs = _vital(f"{eid}-{loinc}", (loinc, display), pat, enc_ref, when)
            obs["valueQuantity"] = _quantity(vitals[name], unit)
            out.append(obs)
    return out


def immunization(
    data: Mapping[str, Any], record_id: str, subject: Mapping[str, Any], *, time: datetime | None
) -> dict[str, Any]:
    """``immunization/v1`` → Immunization."""
    vaccine = data["vaccine"]
    out: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": resource_id("imm", record_id),
        **meta_of(time),
        "identifier": record_identifier(record_id),
        "status": "completed",
        "vaccineCode": concept(SYS_VACCINE, vaccine, codes.VACCINES.get(vaccine, ("",))[0]),
        "patient": ref(subject),
        "occurrenceDateTime": data["date"],
        "protocolApplied": [{"doseNumberPositiveInt": data["dose_number"]}],
    }
    if data.get("lot_number"):
        out["lotNumber"] = data["lot_number"]
    return out


def medication_statements(
    data: Mapping[str, Any], record_id: str, subject: Mapping[str, Any], *, time: datetime | None
) -> list[dict[str, Any]]:
    """``medicine_dispensed/v1`` → one MedicationStatement per item."""
    out = []
    for i, item in enumerate(data["items"], start=1):
        codings = [coding(SYS_MEDICINE, item["medicine_code"], item["name"])]
        if item.get("essential_medicine"):
            em = item["essential_medicine"]
            codings.append(coding(SYS_ESSENTIAL_MEDICINE, em, codes.ESSENTIAL_MEDICINES.get(em)))
        text = " ".join(x for x in (item["name"], item.get("strength")) if x)
        dosage = f"{item['quantity']:g} {item['unit']}"
        if item.get("dosage"):
            dosage += f"; {item['dosage']}"
        out.append(
            {
                "resourceType": "MedicationStatement",
                "id": f"{resource_id('med', record_id)}-{i}",
                **meta_of(time),
                "identifier": record_identifier(record_id),
                "status": "completed",
                "medicationCodeableConcept": {"coding": codings, "text": text},
                "subject": ref(subject),
                "effectiveDateTime": data["dispensed_date"],
                "dosage": [{"text": dosage}],
            }
        )
    return out


def organization(code: str, name: str) -> dict[str, Any]:
    """A source (station or registered facility) as an Organization."""
    return {
        "resourceType": "Organization",
        "id": resource_id("org", code),
        "identifier": [{"system": SYS_SOURCE, "value": code}],
        "name": name,
    }


def record_resources(
    record_type: str,
    record_id: str,
    data: Mapping[str, Any],
    subject: Mapping[str, Any],
    *,
    time: datetime | None = None,
    provider: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The resources of one record of a type both directions map (person → the Patient
    itself; encounter, immunization, medicine_dispensed); ``[]`` for the other types."""
    if record_type == "person":
        return [patient(data, time=time)]
    if record_type == "encounter":
        return encounter(data, record_id, subject, time=time, provider=provider)
    if record_type == "immunization":
        return [immunization(data, record_id, subject, time=time)]
    if record_type == "medicine_dispensed":
        return medication_statements(data, record_id, subject, time=time)
    return []


def bundle(
    resources: Sequence[Mapping[str, Any]], kind: str = "collection", **fields: Any
) -> dict[str, Any]:
    """A Bundle of ``resources`` (each entry with its ``urn:uuid`` fullUrl)."""
    return {
        "resourceType": "Bundle",
        **fields,
        "type": kind,
        "entry": [
            {"fullUrl": full_url(r["resourceType"], r["id"]), "resource": r} for r in resources
        ],
    }
