"""A legacy station through the real pipeline: its visits reach Kafka only as Decision 130
check-out files (written by the simulator, imported through the SDK outbox) and appear in
the reports like every other station's; a person treated at a normal station and at the
legacy station gets a patient summary holding both stations' records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from rich.console import Console

from deploy.demo_legacy import choose_legacy, import_legacy
from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.simulator import simulate
from producers.writers import write_kafka
from schemas.hierarchy import Hierarchy
from schemas.kafka import KafkaConnection
from schemas.topics import RAW, topic_name, topic_specs
from sinks.catalog import open_catalog
from sinks.reports import AccessLog, run_report
from sinks.summary import SummaryRequest, patient_summary
from tests.helpers import unique_name

pytestmark = [pytest.mark.broker, pytest.mark.slow]

START = date(2026, 9, 1)
PROVINCE = "12"  # Lai Châu


def test_legacy_station_in_the_reports_and_a_summary_across_two_stations(
    kafka: KafkaConnection, tmp_path: Path
) -> None:
    prefix = unique_name("legacy") + "."
    apply_topics(kafka, topic_specs(prefix, partitions=2))
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
    pipeline = Pipeline(
        kafka=kafka,
        prefix=prefix,
        store_root=tmp_path / "store",
        log_dir=tmp_path / "logs",
        home=tmp_path / "home",
        worker_args=("--partitions", "2", "--session-timeout", "6"),
        sink_args=("--flush-interval", "1"),
    )
    try:
        pipeline.start()
        raw = topic_name(RAW, prefix)
        write_kafka(events, kafka, raw)
        run = import_legacy(legacy, tmp_path, kafka, raw, Console(file=None))
        assert run.problems == 0 and run.published > 0
        pipeline.wait_caught_up(240, settle_s=2)
    finally:
        pipeline.stop()

    written_outpatient = run.written.visits[(legacy_station, "outpatient")]
    patients = len(run.written.patients[legacy_station])
    assert written_outpatient > 5 and patients > 3
    district = h.lookup(legacy_station, START).district.code
    con = open_catalog(tmp_path / "store", "district")
    try:
        report = run_report(con, h, "health", "district", district, "2026-09")
    finally:
        con.close()
    assert report.numerator("outpatient_visits_per_capita", legacy_station) == written_outpatient
    # the person of the other station keeps their record there: the import does not publish
    # the record of a person of another commune (record ownership: docs/interop.md)
    assert run.persons_elsewhere == 1
    assert report.numerator("health_record_coverage", legacy_station) == patients - 1
    unit_total = report.numerator("outpatient_visits_per_capita")
    assert unit_total == sum(
        report.numerator("outpatient_visits_per_capita", code) for code, _ in report.children
    )

    log = AccessLog(tmp_path / "access.log")
    con = open_catalog(tmp_path / "store", "province", province=PROVINCE)
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
    assert orgs == {normal, legacy_station} and len(providers) == 2
    [entry] = log.read()
    assert entry["outcome"] == "allowed" and entry["stations"] == sorted(orgs)
