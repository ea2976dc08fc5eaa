"""Identifier and code systems, extensions, LOINC codes of the FHIR mapping, and the small
builders every resource uses (codings, ids, bundle-local references)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

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
#: ``person.registration_date``: the day the personal health record was opened (valueDate).
EXT_REGISTRATION_DATE: Final = "urn:tuyen:fhir:ext:registration-date"

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
INT_VITALS: Final = frozenset({"pulse_bpm"})

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


def meta_of(time: datetime | None) -> dict[str, Any]:
    return {"meta": {"lastUpdated": time.isoformat()}} if time is not None else {}


def record_identifier(record_id: str) -> list[dict[str, str]]:
    return [{"system": SYS_RECORD, "value": record_id}]
