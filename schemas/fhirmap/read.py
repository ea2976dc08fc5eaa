"""FHIR R4 resources (JSON-shaped dicts) → the contract's payload data (unvalidated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.fhirmap.systems import (
    BP_DIASTOLIC,
    BP_PANEL,
    BP_POSITION,
    BP_SYSTOLIC,
    EXT_COMMUNE,
    EXT_ETHNICITY,
    EXT_REGISTRATION_DATE,
    INT_VITALS,
    SYS_CITIZEN_ID,
    SYS_ETHNIC_GROUP,
    SYS_HEALTH_ID,
    SYS_ICD10,
    SYS_LOINC,
    SYS_RECORD,
    SYS_REFERRAL_LEVEL,
    SYS_VACCINE,
    TYPE_OF_CLASS,
    VITALS_OF_LOINC,
)
from schemas.reasons import ContractViolation, Reason


# ---- resources → payload data ----------------------------------------------------------------
def _bad(reason: Reason, message: str) -> ContractViolation:
    return ContractViolation(reason, message)


def identifier(resource: Mapping[str, Any], system: str) -> str | None:
    for ident in resource.get("identifier") or ():
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def _code(cc: Mapping[str, Any] | None, system: str) -> str | None:
    for c in (cc or {}).get("coding") or ():
        if c.get("system") == system and c.get("code"):
            return str(c["code"])
    return None


def record_id_of(resource: Mapping[str, Any]) -> str | None:
    """The contract record id a resource carries (``urn:tuyen:id:record``), if any."""
    return identifier(resource, SYS_RECORD)


def person_data(p: Mapping[str, Any]) -> dict[str, Any]:
    """Patient → ``person/v1`` data (unvalidated)."""
    hid = identifier(p, SYS_HEALTH_ID)
    if hid is None:
        raise _bad(Reason.BAD_HEALTH_ID, f"Patient has no identifier of system {SYS_HEALTH_ID}")
    names = p.get("name") or [{}]
    n = names[0]
    full = n.get("text") or " ".join([n.get("family") or "", *(n.get("given") or ())]).strip()
    ext = {e.get("url"): e for e in p.get("extension") or ()}
    eth = (ext.get(EXT_ETHNICITY) or {}).get("valueCoding", {})
    address = (p.get("address") or [{}])[0]
    aext = {e.get("url"): e for e in address.get("extension") or ()}
    commune = (aext.get(EXT_COMMUNE) or {}).get("valueCode")
    if p.get("gender") not in ("male", "female"):
        raise _bad(Reason.UNKNOWN_CODE, f"Patient.gender {p.get('gender')!r}: male or female")
    data: dict[str, Any] = {
        "health_id": hid,
        "full_name": full,
        "sex": p["gender"],
        "birth_date": p.get("birthDate"),
        "ethnicity": eth.get("code") if eth.get("system") == SYS_ETHNIC_GROUP else None,
        "residence_commune": commune,
        "registration_date": (ext.get(EXT_REGISTRATION_DATE) or {}).get("valueDate"),
    }
    cid = identifier(p, SYS_CITIZEN_ID)
    if cid:
        data["citizen_id"] = cid
    if address.get("text"):
        data["street_address"] = address["text"]
    phones = [t["value"] for t in p.get("telecom") or () if t.get("system") == "phone"]
    if phones:
        data["phone"] = phones[0]
    return {k: v for k, v in data.items() if v is not None}


def _number(q: Mapping[str, Any] | None, integer: bool) -> float | int | None:
    if not q or q.get("value") is None:
        return None
    v = q["value"]
    return int(v) if integer and float(v).is_integer() else float(v)


def encounter_data(
    enc: Mapping[str, Any],
    conditions: Sequence[Mapping[str, Any]],
    observations: Sequence[Mapping[str, Any]],
    health_id: str,
) -> dict[str, Any]:
    """Encounter (+ its Conditions, in order, and vital-sign Observations) → ``encounter/v2``."""
    kind = TYPE_OF_CLASS.get((enc.get("class") or {}).get("code", ""))
    if kind is None:
        raise _bad(
            Reason.UNKNOWN_CODE,
            f"Encounter.class {(enc.get('class') or {}).get('code')!r}: AMB, IMP, EMER or HH",
        )
    start = (enc.get("period") or {}).get("start")
    if not start:
        raise _bad(Reason.MISSING_FIELD, "Encounter.period.start is missing")
    diagnoses = []
    for cond in conditions:
        code = _code(cond.get("code"), SYS_ICD10)
        if code is None:
            raise _bad(Reason.BAD_ICD10, f"Condition {cond.get('id')} has no ICD-10 coding")
        diagnoses.append(code)
    data: dict[str, Any] = {
        "health_id": health_id,
        "encounter_date": start[:10],
        "encounter_type": kind,
        "diagnoses": diagnoses,
    }
    hosp = enc.get("hospitalization") or {}
    level = _code(hosp.get("dischargeDisposition"), SYS_REFERRAL_LEVEL)
    if level:
        referral: dict[str, Any] = {"to_level": level}
        dest = (hosp.get("destination") or {}).get("identifier") or {}
        if dest.get("value"):
            referral["facility_code"] = dest["value"]
        if hosp["dischargeDisposition"].get("text"):
            referral["reason"] = hosp["dischargeDisposition"]["text"]
        data["referral"] = referral
    vitals: dict[str, Any] = {}
    for obs in observations:
        loinc = _code(obs.get("code"), SYS_LOINC)
        if loinc == BP_PANEL[0]:
            bp: dict[str, Any] = {}
            for comp in obs.get("component") or ():
                c = _code(comp.get("code"), SYS_LOINC)
                if c == BP_SYSTOLIC[0]:
                    bp["systolic_mmhg"] = _number(comp.get("valueQuantity"), True)
                elif c == BP_DIASTOLIC[0]:
                    bp["diastolic_mmhg"] = _number(comp.get("valueQuantity"), True)
                elif c == BP_POSITION[0] and comp.get("valueString"):
                    bp["position"] = comp["valueString"]
            vitals["blood_pressure"] = bp
        elif loinc in VITALS_OF_LOINC:
            name = VITALS_OF_LOINC[loinc]
            vitals[name] = _number(obs.get("valueQuantity"), name in INT_VITALS)
    if vitals:
        data["vitals"] = vitals
    return data


def immunization_data(imm: Mapping[str, Any], health_id: str) -> dict[str, Any]:
    """Immunization → ``immunization/v1`` data."""
    vaccine = _code(imm.get("vaccineCode"), SYS_VACCINE)
    if vaccine is None:
        raise _bad(Reason.UNKNOWN_VACCINE, f"Immunization has no coding of system {SYS_VACCINE}")
    applied = (imm.get("protocolApplied") or [{}])[0]
    data: dict[str, Any] = {
        "health_id": health_id,
        "vaccine": vaccine,
        "dose_number": applied.get("doseNumberPositiveInt"),
        "date": (imm.get("occurrenceDateTime") or "")[:10] or None,
    }
    if imm.get("lotNumber"):
        data["lot_number"] = imm["lotNumber"]
    return {k: v for k, v in data.items() if v is not None}
