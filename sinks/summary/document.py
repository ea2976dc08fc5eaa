"""The IPS-shaped document Bundle: Composition, sections, narrative, validation."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from schemas import fhirmap
from sinks.summary.records import StoredRecord
from sinks.summary.resources import (
    birth_observation,
    case_condition,
    chronic_resources,
    pregnancy_observation,
)

__all__ = ["SECTIONS", "build_document", "validate_bundle"]

SYS_LIST_EMPTY: Final = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
#: IPS sections in order: key → (LOINC, title).
SECTIONS: Final[dict[str, tuple[str, str]]] = {
    "problems": ("11450-4", "Problem list"),
    "allergies": ("48765-2", "Allergies and adverse reactions"),
    "medications": ("10160-0", "History of medication use"),
    "immunizations": ("11369-6", "History of immunizations"),
    "vital_signs": ("8716-3", "Vital signs"),
    "results": ("30954-2", "Relevant diagnostic tests and laboratory data"),
    "pregnancy": ("10162-6", "History of pregnancies"),
    "encounters": ("46240-8", "History of hospitalizations and outpatient visits"),
}
#: Sections IPS requires even when nothing is known.
REQUIRED: Final = frozenset({"problems", "allergies", "medications"})


@dataclass
class _Section:
    entries: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, resource: dict[str, Any], line: str) -> None:
        self.entries.append(resource)
        self.lines.append(line)


def _at(rec: StoredRecord) -> str:
    return f"{rec.station_name} ({rec.station_code})"


def _narrative(lines: Sequence[str], empty: str) -> dict[str, str]:
    items = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
    body = f"<ul>{items}</ul>" if lines else f"<p>{html.escape(empty)}</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _subject(
    records: Sequence[StoredRecord], health_id: str, org: Callable[[StoredRecord], dict[str, Any]]
) -> dict[str, Any]:
    person = next((r for r in reversed(records) if r.record_type == "person"), None)
    if person is not None:
        subject = fhirmap.patient(person.data, time=person.event_time)
        subject["managingOrganization"] = fhirmap.ref(org(person))  # holds the health record
    else:  # visits recorded before (or without) the person record
        subject = {
            "resourceType": "Patient",
            "id": fhirmap.resource_id("pat", health_id),
            "identifier": [{"system": fhirmap.SYS_HEALTH_ID, "value": health_id}],
        }
    deaths = [r for r in records if r.record_type == "death"]
    if deaths:
        subject["deceasedDateTime"] = deaths[-1].data["death_date"]
    return subject


class _Document:
    """The sections of one person's document, filled record type by record type."""

    def __init__(self, records: Sequence[StoredRecord], health_id: str) -> None:
        self.orgs: dict[str, dict[str, Any]] = {}
        self.s = {key: _Section() for key in SECTIONS}
        self.by_type: dict[str, list[StoredRecord]] = {}
        for r in records:
            self.by_type.setdefault(r.record_type, []).append(r)
        self.subject = _subject(records, health_id, self.org)

    def org(self, rec: StoredRecord) -> dict[str, Any]:
        """The Organization of the station that recorded ``rec`` (one per station)."""
        if rec.station_code not in self.orgs:
            self.orgs[rec.station_code] = fhirmap.organization(rec.station_code, rec.station_name)
        return self.orgs[rec.station_code]

    def encounters(self, recent: int) -> None:
        s, subject = self.s, self.subject
        chosen = sorted(
            self.by_type.get("encounter", []),
            key=lambda r: (r.data["encounter_date"], r.event_time),
        )[-recent:]
        for r in chosen:
            when = r.data["encounter_date"]
            res = fhirmap.encounter(
                r.data, r.record_id, subject, time=r.event_time, provider=self.org(r)
            )
            kind = r.data.get("encounter_type", "outpatient").replace("_", " ")
            s["encounters"].add(
                res[0], f"{when} {kind} visit at {_at(r)}: {', '.join(r.data['diagnoses'])}"
            )
            for x in res[1:]:
                if x["resourceType"] == "Condition":
                    code = x["code"]["coding"][0]
                    s["problems"].add(
                        x,
                        f"{code['code']} {code.get('display', '')} (diagnosed {when} at {_at(r)})",
                    )
                else:
                    s["vital_signs"].add(
                        x, f"{when} {x['code']['coding'][0]['display']} ({_at(r)})"
                    )

    def cases_and_chronic(self, recent: int) -> None:
        s, subject = self.s, self.subject
        for r in self.by_type.get("disease_case", []):
            s["problems"].add(
                case_condition(r, subject),
                f"{r.data['onset_date']} notifiable disease {r.data['disease']} "
                f"({r.data.get('classification', 'suspected')}), reported by {_at(r)}",
            )
        conditions, vitals, results = chronic_resources(
            self.by_type.get("chronic_followup", []), subject, recent=recent
        )
        for c in conditions:
            s["problems"].add(c, f"{c['code']['coding'][0]['display']}: {c['note'][0]['text']}")
        for v in vitals:
            s["vital_signs"].add(v, f"{v['effectiveDateTime']} blood pressure (chronic follow-up)")
        for v in results:
            s["results"].add(
                v,
                f"{v['effectiveDateTime']} {v['code']['coding'][0]['display']}: "
                f"{v['valueQuantity']['value']} {v['valueQuantity']['unit']}",
            )

    def immunizations_and_medicines(self, recent: int) -> None:
        s, subject = self.s, self.subject
        for r in self.by_type.get("immunization", []):
            imm = fhirmap.immunization(r.data, r.record_id, subject, time=r.event_time)
            imm["performer"] = [{"actor": fhirmap.ref(self.org(r))}]
            s["immunizations"].add(
                imm,
                f"{r.data['date']} {r.data['vaccine']} dose {r.data['dose_number']} at {_at(r)}",
            )
        for r in self.by_type.get("medicine_dispensed", [])[-recent:]:
            for m in fhirmap.medication_statements(r.data, r.record_id, subject, time=r.event_time):
                text = m["medicationCodeableConcept"]["text"]
                s["medications"].add(
                    m, f"{r.data['dispensed_date']} {text}: {m['dosage'][0]['text']} ({_at(r)})"
                )

    def pregnancies(self) -> None:
        s, subject = self.s, self.subject
        for r in self.by_type.get("antenatal_visit", []):
            s["pregnancy"].add(
                pregnancy_observation(r, subject),
                f"{r.data['visit_date']} antenatal visit {r.data['visit_number']}, "
                f"{r.data['gestational_weeks']} weeks ({_at(r)})",
            )
        for r in self.by_type.get("birth", []):
            obs = birth_observation(r, subject)
            s["pregnancy"].add(obs, f"{r.data['birth_date']} delivery: {obs['note'][0]['text']}")


def build_document(
    records: Sequence[StoredRecord],
    health_id: str,
    province: str,
    at: datetime,
    bundle_id: str,
    *,
    recent: int = 20,
) -> dict[str, Any]:
    """The document Bundle of a person's records (validated; raises on an invalid one)."""
    d = _Document(records, health_id)
    d.encounters(recent)
    d.cases_and_chronic(recent)
    d.immunizations_and_medicines(recent)
    d.pregnancies()
    return _assemble(d.subject, d.orgs, d.s, health_id, province, at, bundle_id)


def _assemble(
    subject: dict[str, Any],
    orgs: Mapping[str, dict[str, Any]],
    sections: Mapping[str, _Section],
    health_id: str,
    province: str,
    at: datetime,
    bundle_id: str,
) -> dict[str, Any]:
    custodian = {
        "resourceType": "Organization",
        "id": fhirmap.resource_id("org", f"province:{province}"),
        "name": f"Health records of province {province} (tuyen province store)",
    }
    comp_sections = []
    for key, (loinc, title) in SECTIONS.items():
        sec = sections[key]
        if not sec.entries and key not in REQUIRED:
            continue
        entry: dict[str, Any] = {
            "title": title,
            "code": fhirmap.concept(fhirmap.SYS_LOINC, loinc, title),
            "text": _narrative(sec.lines, "No information recorded by the stations."),
        }
        if sec.entries:
            entry["entry"] = [fhirmap.ref(r) for r in sec.entries]
        else:
            entry["emptyReason"] = fhirmap.concept(SYS_LIST_EMPTY, "unavailable", "Unavailable")
        comp_sections.append(entry)
    composition = {
        "resourceType": "Composition",
        "id": fhirmap.resource_id("cmp", bundle_id),
        "status": "final",
        "type": fhirmap.concept(fhirmap.SYS_LOINC, "60591-5", "Patient summary Document"),
        "subject": fhirmap.ref(subject),
        "date": at.isoformat(),
        "author": [fhirmap.ref(custodian)],
        "title": f"Patient summary of {health_id}",
        "confidentiality": "N",
        "custodian": fhirmap.ref(custodian),
        "section": comp_sections,
    }
    resources: list[dict[str, Any]] = [composition, subject, custodian, *orgs.values()]
    seen = {(r["resourceType"], r["id"]) for r in resources}
    for sec in sections.values():
        for r in sec.entries:
            if (r["resourceType"], r["id"]) not in seen:
                seen.add((r["resourceType"], r["id"]))
                resources.append(r)
    bundle = fhirmap.bundle(
        resources,
        kind="document",
        identifier={"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
        timestamp=at.isoformat(),
    )
    validate_bundle(bundle)
    return bundle


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Validate with ``fhir.resources`` (R4B: the R4 structures of these resources)."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
