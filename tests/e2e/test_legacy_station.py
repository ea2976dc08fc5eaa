"""A legacy station through the real pipeline: its visits reach Kafka only as Decision 130
check-out files (written by the simulator, imported through the SDK outbox) and appear in
the reports like every other station's; a person treated at a normal station, at the
legacy station and at a hospital (a registered facility, imported with `tuyen import
xml130`) gets a patient summary holding the three facilities' records, and the record
ownership rule holds through the real worker: the legacy station and the hospital publish
the visit, not the person record the person's commune station holds, so nothing of theirs
is dead-lettered `not_record_holder`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from rich.console import Console
from typer.testing import CliRunner

from deploy.cli.root import app
from deploy.demo_legacy import choose_legacy, import_legacy
from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.interop.xml130 import write_wrapper
from producers.interop.xml130.rows import visit_tables
from producers.simulator import simulate
from producers.writers import write_kafka
from schemas.hierarchy import Hierarchy
from schemas.kafka import KafkaConnection
from schemas.topics import RAW, topic_name, topic_specs
from sinks.catalog import open_catalog
from sinks.catalog_sql import OPERATORS
from sinks.reports import AccessLog, ReportRequest, run_report
from sinks.roots import StoreRoots
from sinks.summary import SummaryRequest, patient_summary
from tests.helpers import unique_name

pytestmark = [pytest.mark.broker, pytest.mark.slow]

START = date(2026, 9, 1)
PROVINCE = "12"  # Lai Châu
HOSPITAL, HOSPITAL_CSKCB = "90001", "12001"  # a provincial hospital (registered facility)


def test_legacy_station_in_the_reports_and_a_summary_across_two_stations(
    kafka: KafkaConnection, tmp_path: Path
) -> None:
    prefix = unique_name("legacy") + "."
    # the deployed shape: a record-level topic and a sink and store root per province
    apply_topics(kafka, topic_specs(prefix, partitions=2, provinces=(PROVINCE,)))
    h = Hierarchy.default()
    cfg = SimulationConfig(
        seed=11,
        provinces=(PROVINCE,),
        n_stations=3,
        start=START.isoformat(),
        days=20,
        scale=0.02,
        activity_scale=2.0,
        offline_station_share=0.0,
    )
    result = simulate(cfg, hierarchy=h)
    provinces = {s: PROVINCE for s in result.stations}
    legacy = choose_legacy(result.stations, provinces, 1)
    [legacy_station] = legacy.stations
    events = [ev for ev in result.events if not legacy.offer(ev)]
    assert legacy.diverted > 0
    # a person of another station is also seen at the legacy station
    normal = next(s for s in result.stations if s != legacy_station)
    live = result.truth.live_records()
    treated = {r.data["health_id"] for (rt, _), r in live.items()
               if rt == "encounter" and r.station == normal and r.data}  # fmt: skip
    hid, person = next(
        (rid, r.data)
        for (rt, rid), r in sorted(live.items())
        if rt == "person" and r.station == normal and rid in treated and r.data
    )
    seen = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
    visit = {"health_id": hid, "encounter_date": "2026-09-18", "encounter_type": "outpatient",
             "diagnoses": ["J06.9"]}  # fmt: skip
    legacy.add_visit(legacy_station, f"{hid}:cross-1", visit, seen, person)
    # ... and at the province's hospital, which exports only Decision 130 files
    facilities = tmp_path / "facilities.csv"
    facilities.write_text(
        f"ma_cskcb,source,name,province,valid_from,valid_to\n"
        f"{HOSPITAL_CSKCB},{HOSPITAL},BV đa khoa tỉnh,{PROVINCE},,\n"
    )
    hospital_file = tmp_path / "hospital" / f"{HOSPITAL_CSKCB}_2026-09-19.xml"
    hospital_file.parent.mkdir()
    tables = visit_tables(
        HOSPITAL_CSKCB, f"{HOSPITAL_CSKCB}_BN7_KB1", person,
        {**visit, "encounter_date": "2026-09-19", "diagnoses": ["I10"]},
        datetime(2026, 9, 19, 3, 0, tzinfo=UTC), province=PROVINCE,
    )  # fmt: skip
    hospital_file.write_bytes(write_wrapper(HOSPITAL_CSKCB, [tables], "20260919"))
    pipeline = Pipeline(
        kafka=kafka,
        prefix=prefix,
        store_root=tmp_path / "store",
        log_dir=tmp_path / "logs",
        home=tmp_path / "home",
        worker_args=("--partitions", "2", "--session-timeout", "6"),
        sink_args=("--flush-interval", "1"),
        extra_env={"TUYEN_FACILITIES": str(facilities)},  # the worker knows the hospital
        record_topics="province",
        provinces=(PROVINCE,),
    )
    roots = StoreRoots.under(str(tmp_path / "store"))
    try:
        pipeline.start()
        raw = topic_name(RAW, prefix)
        write_kafka(events, kafka, raw)
        run = import_legacy(legacy, tmp_path, kafka, raw, Console(file=None))
        assert run.problems == 0 and run.published > 0
        env = {"KAFKA_BOOTSTRAP": kafka.bootstrap, "TUYEN_HOME": str(tmp_path / "home"),
               "TUYEN_FACILITIES": str(facilities)}  # fmt: skip
        imported = CliRunner().invoke(
            app, ["import", "xml130", str(hospital_file), "--dev-keys", "--topic", raw], env=env
        )
        assert imported.exit_code == 0, imported.output
        hospital_run = orjson.loads(imported.stdout.strip().splitlines()[-1])
        # the visit only: the person record stays with the person's commune station
        assert (hospital_run["published"], hospital_run["persons_elsewhere"]) == (1, 1)
        pipeline.wait_caught_up(240, settle_s=2)
    finally:
        pipeline.stop()

    written_outpatient = run.written.visits[(legacy_station, "outpatient")]
    patients = len(run.written.patients[legacy_station])
    assert written_outpatient > 5 and patients > 3
    district = h.lookup(legacy_station, START).district.code
    con = open_catalog(roots.province_root(PROVINCE), "district")
    try:
        request = ReportRequest(
            kind="health", tier="district", unit=district, period="2026-09",
            principal=f"district:{district}",
        )  # fmt: skip
        report = run_report(con, h, request)
    finally:
        con.close()
    assert report.numerator("outpatient_visits_per_capita", legacy_station) == written_outpatient
    # the person of the other station keeps their record there: the import does not publish
    # the record of a person of another commune (record ownership: docs/interop.md)
    assert run.persons_elsewhere == 1
    assert report.numerator("health_record_coverage", legacy_station) == patients - 1
    unit_total = report.numerator("outpatient_visits_per_capita")
    assert unit_total == sum(
        report.numerator("outpatient_visits_per_capita", code) or 0 for code, _ in report.children
    )

    log = AccessLog(tmp_path / "access.log")
    con = open_catalog(roots.province_root(PROVINCE), "province", province=PROVINCE)
    try:
        bundle = patient_summary(
            con, PROVINCE, SummaryRequest(hid, "bs-0007", normal, "continuity of care"),
            access_log=log,
        )  # fmt: skip
    finally:
        con.close()
    Bundle.model_validate(bundle)
    providers = {
        e["resource"]["serviceProvider"]["reference"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Encounter"
    }
    orgs = {
        e["resource"]["identifier"][0]["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Organization" and e["resource"].get("identifier")
    }
    assert orgs == {normal, legacy_station, HOSPITAL} and len(providers) == 3
    # nothing the legacy station or the hospital sent was refused as another holder's record
    con = open_catalog(roots.quarantine, OPERATORS)  # the pipeline's dead letters
    try:
        refused = con.execute(
            "SELECT count(*) FROM dlq WHERE reason = 'not_record_holder'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert refused == 0
    [entry] = log.read()
    assert entry["outcome"] == "allowed" and entry["stations"] == sorted(orgs)
