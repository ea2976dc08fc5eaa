"""The contract's payloads as FHIR R4 resources and back (JSON-shaped dicts, no validation).

One mapping serves both directions: the patient summary (``sinks.summary``) writes
resources with :func:`patient`, :func:`encounter` … and the FHIR import
(``producers.interop.fhir``) reads them back with :func:`person_data`,
:func:`encounter_data` …, so a record exported and imported again is the same record.
Validation against the FHIR structures (``fhir.resources``) is the callers' job.

Identifiers and code systems (documented in docs/interop.md):

- ``Patient.identifier``: health id (``urn:tuyen:id:health-id``), citizen id
  (``urn:tuyen:id:citizen-id``); every resource made from a record carries the record id
  (``urn:tuyen:id:record``); ``meta.lastUpdated`` is the record's event time.
- diagnoses ICD-10 (``http://hl7.org/fhir/sid/icd-10``); vital signs LOINC with UCUM units;
  encounter class v3-ActCode (AMB, IMP, EMER, HH); vaccines, ethnic groups, medicines,
  notifiable diseases and referral levels in the project's code systems (``urn:tuyen:code:…``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from schemas import codes
from schemas.reasons import ContractViolation, Reason

SYS_HEALTH_ID: Final = "urn:tuyen:id:health-id"
SYS_CITIZEN_ID: Final = "urn:tuyen:id:citizen-id"
SYS_RECORD: Final = "urn:tuyen:id:record"
SYS_SOURCE: Final = "urn:tuyen:id:source"
SYS_MA_CSKCB: Final = "urn:tuyen:id:ma-cskcb"
SYS_FACILITY: Final = "urn:tuyen:id:facility"
SYS_ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
SYS_LOINC: Final = "http://loinc.org"
SYS_UCUM: Final = "http://unitsofmeasure.org"
SYS_ACT: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SYS_OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
SYS_CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
SYS_CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SYS_VACCINE: Final = "urn:tuyen:code:vaccine"
SYS_ETHNIC_GROUP: Final = "urn:tuyen:code:ethnic-group"
SYS_MEDICINE: Final = "urn:tuyen:code:dmdc-thuoc"
SYS_ESSENTIAL_MEDICINE: Final = "urn:tuyen:code:essential-medicine"
SYS_DISEASE: Final = "urn:tuyen:code:notifiable-disease"
SYS_REFERRAL_LEVEL: Final = "urn:tuyen:code:referral-level"
SYS_TUYEN_CATEGORY: Final = "urn:tuyen:code:category"
EXT_COMMUNE: Final = "urn:tuyen:fhir:ext:residence-commune"
EXT_ETHNICITY: Final = "urn:tuyen:fhir:ext:ethnicity"

CLASS_OF: Final = {"outpatient": "AMB", "inpatient": "IMP", "emergency": "EMER", "home_visit": "HH"}
TYPE_OF_CLASS: Final = {v: k for k, v in CLASS_OF.items()}

#: vitals field → (LOINC, display, UCUM unit); blood pressure is a panel with components.
VITALS: Final[dict[str, tuple[str, str, str]]] = {
    "pulse_bpm": ("8867-4", "Heart rate", "/min"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "weight_kg": ("29463-7", "Body weight", "kg"),
    "height_cm": ("8302-2", "Body height", "cm"),
}
VITALS_OF_LOINC: Final = {code: name for name, (code, _, _) in VITALS.items()}
BP_PANEL: Final = ("85354-9", "Blood pressure panel with all children optional")
BP_SYSTOLIC: Final = ("8480-6", "Systolic blood pressure")
BP_DIASTOLIC: Final = ("8462-4", "Diastolic blood pressure")
BP_POSITION: Final = ("8361-8", "Body position with respect to gravity")
_INT_VITALS: Final = frozenset({"pulse_bpm"})

_NAMESPACE: Final = uuid.UUID("3b9d7c0e-0f6a-5d57-9a53-7475796e0001")


# ---- small builders ------------------------------------------------------------------------
def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def resource_id(kind: str, key: str) -> str:
    """A FHIR id (``[A-Za-z0-9.-]{1,64}``) for a record's resource: stable, opaque."""
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def full_url(resource_type: str, rid: str) -> str:
    """The bundle-local ``urn:uuid:`` of a resource (references point to it)."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{rid}')}"


def ref(resource: Mapping[str, Any]) -> dict[str, str]:
    return {"reference": full_url(resource["resourceType"], resource["id"])}


def _meta(time: datetime | None) -> dict[str, Any]:
    return {"meta": {"lastUpdated": time.isoformat()}} if time is not None else {}


def _record_identifier(record_id: str) -> list[dict[str, str]]:
    return [{"system": SYS_RECORD, "value": record_id}]


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
        **_meta(time),
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
        **_meta(time),
        "identifier": _record_identifier(record_id),
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
    referral = data.get("referral")
    if referral:
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
        enc["hospitalization"] = hosp
    vitals = data.get("vitals") or {}
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
        **_meta(time),
        "identifier": _record_identifier(record_id),
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
                **_meta(time),
                "identifier": _record_identifier(record_id),
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


# ---- resources → payload data ----------------------------------------------------------------
def _bad(reason: Reason, message: str) -> ContractViolation:
    return ContractViolation(reason, message)


def _identifier(resource: Mapping[str, Any], system: str) -> str | None:
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
    return _identifier(resource, SYS_RECORD)


def person_data(p: Mapping[str, Any]) -> dict[str, Any]:
    """Patient → ``person/v1`` data (unvalidated)."""
    hid = _identifier(p, SYS_HEALTH_ID)
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
    }
    cid = _identifier(p, SYS_CITIZEN_ID)
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
            vitals[name] = _number(obs.get("valueQuantity"), name in _INT_VITALS)
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
