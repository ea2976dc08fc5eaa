"""The patient summary from a province store written by the real sink encoder: a person
treated at two stations gets both stations' records, the Bundle validates as FHIR R4, every
request is in the access log, other provinces' facilities are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from schemas.examples import example_data
from schemas.hierarchy import Hierarchy
from sinks import catalog
from sinks.catalog import open_catalog
from sinks.catalog_sql import STATE_DIR
from sinks.compact import compact
from sinks.config import CompactConfig
from sinks.encode import tier_encoder
from sinks.reports import AccessDenied, AccessLog, BadRequest
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.summary import SummaryNotFound, SummaryRequest, patient_summary
from sinks.summary.records import SUMMARY_TYPES
from sinks.testing import FakeMessage, tier_record
from tests.helpers import record_decisions

HID = "0123456789"
OTHER = "0999999999"
T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
STATIONS = {"00004": "Phường Ba Đình", "00008": "Phường Ngọc Hà"}


def _rec(rt: str, station: str, n: int, data: dict[str, Any] | None, **kw: Any) -> Any:
    r = tier_record(rt, n=n, event_time=T0 + timedelta(days=n), data=data, **kw)
    return r.model_copy(update={"station_code": station, "station_name": STATIONS[station]})


def write_store(root: Path) -> None:
    d = date(2026, 10, 5)
    enc_a = example_data("encounter", health_id=HID, on=d)
    enc_b = {**example_data("encounter", health_id=HID, on=d + timedelta(days=9)),
             "diagnoses": ["J06.9"]}  # fmt: skip
    del enc_b["referral"]
    records = [
        _rec("person", "00004", 0, example_data("person", health_id=HID), record_id=HID),
        _rec("encounter", "00004", 1, enc_a, record_id=f"{HID}:a1"),
        _rec("encounter", "00008", 2, enc_b, record_id=f"{HID}:b1"),
        _rec("immunization", "00008", 3, example_data("immunization", health_id=HID, on=d),
             record_id=f"{HID}:i1"),
        _rec("disease_case", "00004", 4, example_data("disease_case", health_id=HID, on=d),
             record_id=f"{HID}:c1"),
        _rec("chronic_followup", "00008", 5,
             {**example_data("chronic_followup", health_id=HID, on=d),
              "measurements": {"systolic_bp_mmhg": 150, "diastolic_bp_mmhg": 95,
                               "fasting_glucose_mmol_l": 7.2}},
             record_id=f"{HID}:f1"),
        _rec("antenatal_visit", "00004", 6, example_data("antenatal_visit", health_id=HID, on=d),
             record_id=f"{HID}:anc1"),
        _rec("birth", "00008", 7, example_data("birth", health_id=HID, on=d),
             record_id=f"{HID}:b1"),
        _rec("medicine_dispensed", "00008", 8,
             example_data("medicine_dispensed", health_id=HID, on=d), record_id=f"{HID}:b1-rx"),
        # another person, and a record of this one that was deleted
        _rec("encounter", "00004", 9, example_data("encounter", health_id=OTHER, on=d),
             record_id=f"{OTHER}:x"),
        _rec("immunization", "00004", 10, example_data("immunization", health_id=HID, on=d),
             record_id=f"{HID}:gone"),
        _rec("immunization", "00004", 11, None, record_id=f"{HID}:gone", op="delete", version=2),
    ]  # fmt: skip
    w = SegmentWriter(
        store=Store.open(root), topic="tier.province", encoder=tier_encoder("province")
    )
    w.add(0, [FakeMessage.of("tier.province", 0, i, r) for i, r in enumerate(records)])
    w.flush_due(force=True)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    write_store(root)
    return root


def _req(facility: str = "00004", health_id: str = HID) -> SummaryRequest:
    return SummaryRequest(health_id, "bs-0042", facility, "continuity of care")


def test_summary_of_a_person_treated_at_two_stations(store: Path, tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.log")
    con = open_catalog(store, "province", province="01")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    bundle = patient_summary(con, "01", _req(), access_log=log, now=now)
    Bundle.model_validate(bundle)  # validates as FHIR (R4B structures = R4's here)
    resources = [e["resource"] for e in bundle["entry"]]
    comp = resources[0]
    assert (bundle["type"], comp["resourceType"], comp["type"]["coding"][0]["code"]) == (
        "document",
        "Composition",
        "60591-5",
    )
    titles = [s["title"] for s in comp["section"]]
    assert titles == [
        "Problem list",
        "Allergies and adverse reactions",
        "History of medication use",
        "History of immunizations",
        "Vital signs",
        "Relevant diagnostic tests and laboratory data",
        "History of pregnancies",
        "History of hospitalizations and outpatient visits",
    ]
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("Encounter") == 2 and kinds.count("Immunization") == 1
    records = {i["value"] for r in resources for i in r.get("identifier", ())
               if i["system"] == "urn:tuyen:id:record"}  # fmt: skip
    assert records == {f"{HID}:{x}" for x in ("a1", "b1", "i1", "c1", "f1", "anc1", "b1-rx")}
    assert not any(OTHER in str(r) for r in resources)
    orgs = {r["identifier"][0]["value"] for r in resources if r["resourceType"] == "Organization"
            and r.get("identifier")}  # fmt: skip
    assert orgs == {"00004", "00008"}  # both stations that treated the person
    providers = {r["serviceProvider"]["reference"] for r in resources if r["resourceType"] ==
                 "Encounter"}  # fmt: skip
    assert len(providers) == 2
    problems = comp["section"][0]["text"]["div"]
    assert "DENGUE" in problems and "Essential (primary) hypertension" in problems
    [line] = log.read()
    assert {
        k: line[k]
        for k in (
            "kind",
            "clinician",
            "facility",
            "purpose",
            "subject",
            "outcome",
            "records",
            "stations",
        )
    } == {
        "kind": "patient_summary",
        "clinician": "bs-0042",
        "facility": "00004",
        "purpose": "continuity of care",
        "subject": HID,
        "outcome": "allowed",
        "records": 9,
        "stations": ["00004", "00008"],
    }


def test_refused_not_found_and_bad_requests_are_logged(store: Path, tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.log")
    con = open_catalog(store, "province", province="01")
    h = Hierarchy.default()
    with pytest.raises(AccessDenied, match="province 79"):
        patient_summary(con, "01", _req(facility="26740"), access_log=log, hierarchy=h)
    with pytest.raises(SummaryNotFound):
        patient_summary(con, "01", _req(health_id="0111111111"), access_log=log, hierarchy=h)
    with pytest.raises(BadRequest):
        patient_summary(con, "01", SummaryRequest(HID, "bs 1", "00004", "x"), access_log=log)
    with pytest.raises(BadRequest):
        patient_summary(con, "01", SummaryRequest(HID, "bs-1", "00004", " "), access_log=log)
    assert [x["outcome"] for x in log.read()] == ["refused", "not_found", "error", "error"]


def test_the_cli_prints_the_bundle_and_maps_outcomes_to_exit_codes(
    store: Path, tmp_path: Path
) -> None:
    import orjson
    from typer.testing import CliRunner

    from deploy.cli.root import app

    # no --store-root: the province's own root under TUYEN_STORE_ROOT (province-01)
    owners = tmp_path / "owners"
    owners.mkdir()
    (owners / "province-01").symlink_to(store)
    env = {"TUYEN_ACCESS_LOG": str(tmp_path / "access.log"), "TUYEN_STORE_ROOT": str(owners)}
    base = ["summary", "--clinician", "bs-1", "--purpose", "referral", "--province", "01"]
    out = tmp_path / "summary.json"
    ok = CliRunner().invoke(
        app, [*base, "--health-id", HID, "--facility", "00004", "--out", str(out)], env=env
    )
    assert ok.exit_code == 0, ok.output
    Bundle.model_validate(orjson.loads(out.read_bytes()))
    refused = CliRunner().invoke(app, [*base, "--health-id", HID, "--facility", "26740"], env=env)
    missing = CliRunner().invoke(
        app, [*base, "--health-id", "0111111111", "--facility", "00004"], env=env
    )
    bad = CliRunner().invoke(app, [*base, "--health-id", "12", "--facility", "00004"], env=env)
    assert (refused.exit_code, missing.exit_code, bad.exit_code) == (3, 4, 2)
    outcomes = [x["outcome"] for x in AccessLog(tmp_path / "access.log").read()]
    assert outcomes == ["allowed", "refused", "not_found", "error"]


def test_a_compacted_store_gives_the_same_summary_deciding_only_its_record_types(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over compaction's current-state files the summary's snapshot decides only the record
    types the summary reads (``SUMMARY_TYPES``), and the Bundle is the one the uncompacted
    store gives (its generated ids fixed)."""
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    log = AccessLog(tmp_path / "access.log")
    before = patient_summary(open_catalog(store, "province"), "01", _req(), access_log=log, now=now)
    beds = _rec("bed_snapshot", "00004", 20, example_data("bed_snapshot", on=date(2026, 10, 5)))
    w = SegmentWriter(
        store=Store.open(store), topic="tier.province", encoder=tier_encoder("province")
    )
    w.add(1, [FakeMessage.of("tier.province", 1, 0, beds)])  # a record type it does not read
    w.flush_due(force=True)
    compact(CompactConfig(store_root=str(store), min_file_age_s=0, min_files=1))
    assert (store / "province" / STATE_DIR / "record_type=bed_snapshot").exists()
    decided = record_decisions(monkeypatch)
    catalog._DECISIONS._kept.clear()
    after = patient_summary(open_catalog(store, "province"), "01", _req(), access_log=log, now=now)
    assert decided and set(decided) <= set(SUMMARY_TYPES)
    assert after == before
