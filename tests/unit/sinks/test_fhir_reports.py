"""FHIR R4 MeasureReport output, validated with fhir.resources (R4B models R4's MeasureReport)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport

from schemas.hierarchy import Hierarchy
from sinks.reports.render import fhir_bundle, measure_reports
from sinks.reports.render.fhir import validate
from tests.report_store import Stores
from tests.unit.sinks.test_report_indicators import scenario


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    stores = Stores(tmp_path_factory.mktemp("fhir"), scenario(Hierarchy.default()))
    yield stores
    stores.close()


@pytest.mark.parametrize("kind", ["health", "resources", "completeness"])
def test_every_measure_report_validates(con: Any, kind: str) -> None:
    report = con.report(Hierarchy.default(), kind, "district", "KV001", "2026-10")
    resources = measure_reports(report)
    assert len(resources) == len(report.indicators) * (1 + len(report.children))
    for res in resources:
        mr = MeasureReport.model_validate(orjson.loads(orjson.dumps(res)))
        assert mr.status == "complete" and mr.type == "summary"
    bundle = fhir_bundle(report)
    validate(bundle)
    parsed: Any = Bundle.model_validate(bundle)
    assert len(parsed.entry) == len(resources)


def test_numerator_denominator_and_score(con: Any) -> None:
    report = con.report(Hierarchy.default(), "health", "national", None, "2026-10")
    by_id = {
        (r["subject"]["identifier"]["value"], r["group"][0]["code"]["coding"][0]["code"]): r
        for r in measure_reports(report)
    }
    fb: Any = MeasureReport.model_validate(by_id[("VN", "facility_deliveries")])
    pops = {p.code.coding[0].code: p.count for p in fb.group[0].population}
    assert pops == {"numerator": 3, "denominator": 4}
    assert float(fb.group[0].measureScore.value) == pytest.approx(75.0)
    assert fb.period.start.isoformat() == "2026-10-01"
    assert fb.period.end.isoformat() == "2026-10-31"
    count: Any = MeasureReport.model_validate(by_id[("VN", "hypertension_registered")])
    assert [p.code.coding[0].code for p in count.group[0].population] == ["initial-population"]
    # undefined ratio (0/0): populations present, no score
    undefined = by_id[("79", "anc4")]
    assert "measureScore" not in undefined["group"][0] or undefined["group"][0]["measureScore"]
    validate(undefined)
