"""FHIR resources of the record types only the summary writes (notifiable cases, the chronic
register, pregnancies and births); the others come from :mod:`schemas.fhirmap`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from schemas import codes
from schemas.fhirmap import (
    BP_DIASTOLIC,
    BP_PANEL,
    BP_SYSTOLIC,
    SYS_CONDITION_CATEGORY,
    SYS_CONDITION_CLINICAL,
    SYS_DISEASE,
    SYS_ICD10,
    SYS_LOINC,
    SYS_OBS_CATEGORY,
    SYS_RECORD,
    SYS_TUYEN_CATEGORY,
    coding,
    concept,
    ref,
    resource_id,
)
from sinks.summary.records import StoredRecord

__all__ = ["birth_observation", "case_condition", "chronic_resources", "pregnancy_observation"]

SYS_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SYS_SNOMED: Final = "http://snomed.info/sct"
SYS_UCUM: Final = "http://unitsofmeasure.org"
CLINICAL_OF_OUTCOME: Final = {
    "recovering": "active",
    "unknown": "active",
    "recovered": "resolved",
    "died": "inactive",
}
VERIFICATION_OF: Final = {
    "suspected": "provisional",
    "probable": "provisional",
    "confirmed": "confirmed",
}
CHRONIC_ICD10: Final = {
    "hypertension": ("I10", "Essential (primary) hypertension"),
    "diabetes": ("E14", "Unspecified diabetes mellitus"),
}
GLUCOSE: Final = ("14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", "mmol/L")
HBA1C: Final = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%")


def _base(kind: str, rec: StoredRecord) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": resource_id(kind[:3].lower(), f"{rec.record_type}:{rec.record_id}"),
        "meta": {"lastUpdated": rec.event_time.isoformat()},
        "identifier": [{"system": SYS_RECORD, "value": rec.record_id}],
    }


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": SYS_UCUM, "code": unit}


def case_condition(rec: StoredRecord, subject: Mapping[str, Any]) -> dict[str, Any]:
    """A notifiable-disease case → Condition (ICD-10 and the national disease code)."""
    d = rec.data
    name, icd = codes.NOTIFIABLE_DISEASES[d["disease"]]
    return {
        **_base("Condition", rec),
        "clinicalStatus": concept(
            SYS_CONDITION_CLINICAL, CLINICAL_OF_OUTCOME[d.get("outcome", "unknown")]
        ),
        "verificationStatus": concept(
            SYS_VERIFICATION, VERIFICATION_OF[d.get("classification", "suspected")]
        ),
        "category": [
            concept(SYS_CONDITION_CATEGORY, "problem-list-item", "Problem List Item"),
            concept(SYS_TUYEN_CATEGORY, "notifiable-case", "Notifiable disease case"),
        ],
        "code": {"coding": [coding(SYS_ICD10, icd, name), coding(SYS_DISEASE, d["disease"], name)]},
        "subject": ref(subject),
        "onsetDateTime": d["onset_date"],
        "note": [
            {
                "text": f"{d.get('classification', 'suspected')} case reported by "
                f"{rec.station_name} ({rec.station_code}); "
                f"{'hospitalised' if d.get('hospitalised') else 'not hospitalised'}; "
                f"outcome {d.get('outcome', 'unknown')}"
            }
        ],
    }


def chronic_resources(
    followups: Sequence[StoredRecord], subject: Mapping[str, Any], *, recent: int = 12
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The chronic register: one Condition per managed condition (hypertension, diabetes),
    and the measurements of the ``recent`` latest follow-ups as (vital signs, results)."""
    conditions: list[dict[str, Any]] = []
    vitals: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    by_condition: dict[str, list[StoredRecord]] = {}
    for f in followups:
        by_condition.setdefault(f.data["condition"], []).append(f)
    for cond, recs in sorted(by_condition.items()):
        recs.sort(key=lambda r: (r.data["visit_date"], r.event_time))
        last = recs[-1]
        icd, display = CHRONIC_ICD10[cond]
        state = "controlled" if last.data.get("controlled") else "not controlled"
        conditions.append(
            {
                **_base("Condition", last),
                "id": resource_id("chr", f"{subject['id']}:{cond}"),
                "clinicalStatus": concept(SYS_CONDITION_CLINICAL, "active"),
                "category": [
                    concept(SYS_CONDITION_CATEGORY, "problem-list-item", "Problem List Item"),
                    concept(SYS_TUYEN_CATEGORY, "chronic-register", "Chronic disease register"),
                ],
                "code": concept(SYS_ICD10, icd, display),
                "subject": ref(subject),
                "onsetDateTime": recs[0].data["visit_date"],
                "note": [
                    {
                        "text": f"{len(recs)} follow-ups; the last on {last.data['visit_date']} "
                        f"at {last.station_name} ({last.station_code}): {state}"
                    }
                ],
            }
        )
        for r in recs[-recent:]:
            m = r.data.get("measurements") or {}
            when = r.data["visit_date"]
            if m.get("systolic_bp_mmhg") is not None:
                obs = _observation(r, subject, "vital-signs", BP_PANEL, when, "bp")
                obs["component"] = [
                    {
                        "code": concept(SYS_LOINC, *BP_SYSTOLIC),
                        "valueQuantity": _quantity(m["systolic_bp_mmhg"], "mm[Hg]"),
                    },
                    {
                        "code": concept(SYS_LOINC, *BP_DIASTOLIC),
                        "valueQuantity": _quantity(m["diastolic_bp_mmhg"], "mm[Hg]"),
                    },
                ]
                vitals.append(obs)
            for field, (loinc, display, unit) in (
                ("fasting_glucose_mmol_l", GLUCOSE),
                ("hba1c_percent", HBA1C),
            ):
                if m.get(field) is not None:
                    obs = _observation(r, subject, "laboratory", (loinc, display), when, loinc)
                    obs["valueQuantity"] = _quantity(m[field], unit)
                    results.append(obs)
    return conditions, vitals, results


def _observation(
    rec: StoredRecord,
    subject: Mapping[str, Any],
    category: str,
    code: tuple[str, str],
    when: str,
    suffix: str,
) -> dict[str, Any]:
    base = _base("Observation", rec)
    return {
        **base,
        "id": f"{base['id']}-{suffix}",
        "status": "final",
        "category": [concept(SYS_OBS_CATEGORY, category)],
        "code": concept(SYS_LOINC, *code),
        "subject": ref(subject),
        "effectiveDateTime": when,
    }


def pregnancy_observation(rec: StoredRecord, subject: Mapping[str, Any]) -> dict[str, Any]:
    """An antenatal visit → Observation "pregnancy status: pregnant" with the gestational
    age and, when known, the expected delivery date."""
    d = rec.data
    obs = _observation(
        rec, subject, "social-history", ("82810-3", "Pregnancy status"), d["visit_date"], "anc"
    )
    obs["valueCodeableConcept"] = concept(SYS_SNOMED, "77386006", "Pregnant")
    obs["component"] = [
        {
            "code": concept(SYS_LOINC, "49051-6", "Gestational age in weeks"),
            "valueQuantity": _quantity(d["gestational_weeks"], "wk"),
        }
    ]
    if d.get("expected_delivery_date"):
        obs["component"].append(
            {
                "code": concept(SYS_LOINC, "11778-8", "Delivery date Estimated"),
                "valueDateTime": d["expected_delivery_date"],
            }
        )
    obs["note"] = [
        {"text": f"antenatal visit {d['visit_number']} at {rec.station_name} ({rec.station_code})"}
    ]
    return obs


def birth_observation(rec: StoredRecord, subject: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery (birth record of this mother) → Observation of the delivery date."""
    d = rec.data
    obs = _observation(
        rec,
        subject,
        "social-history",
        ("93857-1", "Date and time of obstetric delivery"),
        d["birth_date"],
        "birth",
    )
    obs["valueDateTime"] = d["birth_date"]
    details = [
        "live birth" if d["live_birth"] else "stillbirth",
        f"at {d['place']}",
        f"attended by {d['attendant'].replace('_', ' ')}",
    ]
    if d.get("weight_grams"):
        details.append(f"{d['weight_grams']} g")
    if d.get("child_sex"):
        details.append(d["child_sex"])
    if d.get("child_health_id"):
        details.append(f"child health id {d['child_health_id']}")
    obs["note"] = [{"text": f"{', '.join(details)}; recorded by {rec.station_name}"}]
    return obs
