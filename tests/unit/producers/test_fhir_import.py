"""FHIR R4 Bundle import (pure): the contract's records → resources → the same records, and
one problem line per bad resource."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers.interop.fhir import read_bundle
from producers.interop.importer import Problem, ReadContext, Visit
from schemas import Reason, fhirmap
from schemas.examples import example_data

NOW = datetime(2026, 11, 1, tzinfo=UTC)
T = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)
HID = "0123456789"


def records() -> list[tuple[str, str, dict[str, Any]]]:
    enc = example_data("encounter", on=T.date())
    enc["vitals"]["height_cm"] = 165.0
    enc["vitals"]["blood_pressure"]["position"] = "sitting"
    enc["referral"]["facility_code"] = "01929"
    home = {**example_data("encounter", on=T.date()), "encounter_type": "home_visit"}
    del home["vitals"], home["referral"]
    return [
        ("person", HID, example_data("person")),
        ("encounter", f"{HID}:v-0001", enc),
        ("encounter", f"{HID}:v_0002", home),
        ("immunization", f"{HID}:imm-1", {**example_data("immunization", on=T.date()),
                                            "lot_number": "L-77"}),
    ]  # fmt: skip


def make_bundle(recs: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    subject = fhirmap.patient(recs[0][2], time=T)
    resources = []
    for rt, rid, data in recs:
        resources += fhirmap.record_resources(rt, rid, data, subject, time=T)
    return fhirmap.bundle(resources, timestamp=T.isoformat())


def read(tmp_path: Path, obj: Any) -> tuple[list[Visit | Problem], ReadContext]:
    path = tmp_path / "bundle.json"
    path.write_bytes(orjson.dumps(obj))
    ctx = ReadContext(source="00004", now=NOW)
    return list(read_bundle(path, ctx)), ctx


def test_records_round_trip_through_a_bundle(tmp_path: Path) -> None:
    recs = records()
    out, ctx = read(tmp_path, make_bundle(recs))
    assert all(isinstance(x, Visit) for x in out), out
    got = []
    for v in out:
        assert isinstance(v, Visit) and v.source == "00004"
        for d in v.drafts:
            rid = HID if d.local_id is None else f"{HID}:{d.local_id}"
            got.append(
                (
                    d.record_type.value,
                    rid,
                    d.payload.model_dump(mode="json", exclude_none=True),
                    d.time,
                )
            )
    assert got == [(rt, rid, data, T) for rt, rid, data in recs]  # fmt: skip
    assert not ctx.warnings


def test_the_bundle_validates_with_fhir_resources() -> None:
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(make_bundle(records()))


def _entries(b: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == kind]


def test_each_bad_resource_is_one_problem_line(tmp_path: Path) -> None:
    b = make_bundle(records())
    enc = _entries(b, "Encounter")[0]
    cond = _entries(b, "Condition")[0]
    cond["code"]["coding"][0]["code"] = "K21.9"  # outside the ICD-10 subset
    imm = _entries(b, "Immunization")[0]
    imm["occurrenceDateTime"] = "not a date"  # fails FHIR validation itself
    out, _ = read(tmp_path, b)
    problems = [p for p in out if isinstance(p, Problem)]
    assert [(p.table, p.key, p.reason) for p in problems] == [
        ("Immunization", f"Immunization/{imm['id']}", Reason.SCHEMA_VIOLATION),
        ("Encounter", f"Encounter/{enc['id']}", Reason.BAD_ICD10),
    ]
    assert next(v.key for v in out if isinstance(v, Visit)).startswith("Patient/")


def test_a_bad_patient_makes_its_records_bad(tmp_path: Path) -> None:
    b = make_bundle(records())
    pat = _entries(b, "Patient")[0]
    pat["identifier"] = [i for i in pat["identifier"] if i["system"] != fhirmap.SYS_HEALTH_ID]
    out, _ = read(tmp_path, b)
    assert all(isinstance(x, Problem) for x in out)
    assert [x.reason for x in out if isinstance(x, Problem)] == [Reason.BAD_HEALTH_ID] * 4


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (b"{not json", Reason.NOT_JSON),
        ({"resourceType": "Patient"}, Reason.SCHEMA_VIOLATION),
        ({"resourceType": "Bundle", "entry": []}, Reason.SCHEMA_VIOLATION),
    ],
)
def test_bad_files(tmp_path: Path, obj: Any, reason: Reason) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(obj if isinstance(obj, bytes) else orjson.dumps(obj))
    out = list(read_bundle(path, ReadContext(source="00004", now=NOW)))
    assert [(p.table, p.reason) for p in out if isinstance(p, Problem)] == [("Bundle", reason)]


def test_loose_resources_are_warned_and_skipped(tmp_path: Path) -> None:
    b = make_bundle(records()[:1])
    subject = _entries(b, "Patient")[0]
    loose = copy.deepcopy(fhirmap.encounter(example_data("encounter"), f"{HID}:x", subject)[1])
    del loose["encounter"]
    b["entry"].append({"fullUrl": "urn:uuid:c0ffee00-0000-4000-8000-000000000001",
                       "resource": loose})  # fmt: skip
    out, ctx = read(tmp_path, b)
    assert [type(x).__name__ for x in out] == ["Visit"]
    assert [w.message for w in ctx.warnings] == [
        "a Condition outside an Encounter of the bundle is not imported"
    ]
