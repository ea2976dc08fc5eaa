"""DHIS2 export: the dataValueSets JSON and the ADX XML carry exactly the report's
numerators and denominators, for the mapped indicators and units."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from deploy.cli.root import app
from schemas.examples import example_data
from schemas.hierarchy import Hierarchy
from sinks.catalog import open_catalog
from sinks.dhis2 import (
    ADX_NAMESPACE,
    Dhis2Mapping,
    adx_document,
    build_export,
    data_value_set,
    dhis2_period,
    report_figures,
)
from sinks.encode import tier_encoder
from sinks.reports import BadRequest, ReportRequest, parse_period, run_report
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record

T0 = datetime(2026, 10, 3, 2, tzinfo=UTC)
MAPPING: dict[str, Any] = {
    "dataSet": {"id": "pBOMPrpg1QX", "code": "VN_HMIS_MONTHLY"},
    "attributeOptionCombo": "HllvX50cXC0",
    "orgUnits": {
        "01": {"id": "ImspTQPwCqd", "code": "VN_01"},
        "KV001": {"id": "O6uvpzGd5pu", "code": "VN_KV001"},
    },
    "indicators": {
        "facility_deliveries": {
            "numerator": {"dataElement": "s46m5MS0hxu", "code": "DELIVERIES_FACILITY",
                          "categoryOptionCombo": "Prlt0C1RF0s", "categories": {"PLACE": "FAC"}},
            "denominator": {"dataElement": "UOlfIjgN8X6", "code": "DELIVERIES_ALL"},
        },
        "outpatient_visits_per_capita": {
            "numerator": {"dataElement": "fbfJHSPpUQD", "code": "OPD_VISITS"},
            "denominator": {"dataElement": "cYeuwXTCPkU", "code": "POPULATION"},
        },
        "station_doctors_per_10000": {
            "numerator": {"dataElement": "Jtf34kNZhzP", "code": "DOCTORS"},
        },
    },
}  # fmt: skip


def _rec(rt: str, station: str, n: int, data: dict[str, Any], rid: str) -> Any:
    r = tier_record(rt, n=n, event_time=T0 + timedelta(hours=n), data=data, record_id=rid)
    return r.model_copy(
        update={"station_code": station, "district_code": "KV001", "station_name": station}
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dhis2") / "store"
    d = date(2026, 10, 3)
    recs = []
    for i in range(7):
        hid = f"{1000000000 + i}"
        station = ("00004", "00008")[i % 2]
        recs.append(_rec("encounter", station, i, example_data("encounter", health_id=hid, on=d),
                         f"{hid}:e"))  # fmt: skip
        birth = {**example_data("birth", health_id=hid, on=d),
                 "place": "facility" if i % 3 else "home"}  # fmt: skip
        recs.append(_rec("birth", station, i, birth, f"{hid}:b"))
    for station in ("00004", "00008"):
        staff = example_data("staff_snapshot", on=d)
        recs.append(_rec("staff_snapshot", station, 9, staff, f"{station}:staff:2026-10"))
    w = SegmentWriter(
        store=Store.open(root), topic="tier.province", encoder=tier_encoder("province")
    )
    w.add(0, [FakeMessage.of("tier.province", 0, i, r) for i, r in enumerate(recs)])
    w.flush_due(force=True)
    return root


def test_json_and_adx_carry_exactly_the_report_figures(store: Path, tmp_path: Path) -> None:
    h = Hierarchy.default()
    con = open_catalog(store, "province")
    figures = report_figures(con, h, "01", "2026-10", "province:01")
    mapping = Dhis2Mapping.model_validate(MAPPING)
    export = build_export(figures, mapping, "2026-10")
    doc = data_value_set(export, mapping, complete_date="2026-11-05")
    exported = datetime(2026, 11, 6, tzinfo=UTC)
    adx = ET.fromstring(
        adx_document(export, mapping, exported=exported, complete_date="2026-11-05")
    )

    expected: dict[tuple[str, str, str], int] = {}
    for kind in ("health", "resources"):
        request = ReportRequest(
            kind=kind, tier="province", unit="01", period="2026-10", principal="province:01"
        )
        report = run_report(con, h, request)
        for c in report.cells:
            if c.indicator.code in MAPPING["indicators"] and c.unit_code in MAPPING["orgUnits"]:
                assert c.numerator is not None  # the province's own report: exact
                expected[(c.indicator.code, "numerator", c.unit_code)] = c.numerator
                if "denominator" in MAPPING["indicators"][c.indicator.code]:
                    assert c.denominator is not None
                    expected[(c.indicator.code, "denominator", c.unit_code)] = c.denominator
    assert len(expected) == 10 and expected[("facility_deliveries", "denominator", "01")] == 7
    assert expected[("facility_deliveries", "numerator", "01")] == 4
    assert expected[("station_doctors_per_10000", "numerator", "KV001")] == 2

    unit_of_id = {u["id"]: k for k, u in MAPPING["orgUnits"].items()}
    unit_of_code = {u["code"]: k for k, u in MAPPING["orgUnits"].items()}
    target_of: dict[str, tuple[str, str]] = {}
    for ind, t in MAPPING["indicators"].items():
        for part, target in t.items():
            target_of[target["dataElement"]] = (ind, part)
            target_of[target["code"]] = (ind, part)

    assert {k: doc[k] for k in ("dataSet", "completeDate", "period", "attributeOptionCombo")} == {
        "dataSet": "pBOMPrpg1QX",
        "completeDate": "2026-11-05",
        "period": "202610",
        "attributeOptionCombo": "HllvX50cXC0",
    }
    from_json = {
        (*target_of[v["dataElement"]], unit_of_id[v["orgUnit"]]): int(v["value"])
        for v in doc["dataValues"]
    }
    assert from_json == expected
    births = next(v for v in doc["dataValues"] if v["dataElement"] == "s46m5MS0hxu")
    assert births["categoryOptionCombo"] == "Prlt0C1RF0s" and births["period"] == "202610"

    ns = {"adx": ADX_NAMESPACE}
    assert adx.tag == f"{{{ADX_NAMESPACE}}}adx" and adx.get("exported")
    from_adx = {}
    for group in adx.findall("adx:group", ns):
        assert (group.get("period"), group.get("dataSet"), group.get("completeDate")) == (
            "2026-10-01/P1M",
            "VN_HMIS_MONTHLY",
            "2026-11-05",
        )
        for dv in group.findall("adx:dataValue", ns):
            key = (*target_of[dv.get("dataElement", "")], unit_of_code[group.get("orgUnit", "")])
            from_adx[key] = int(dv.get("value", ""))
            if dv.get("dataElement") == "DELIVERIES_FACILITY":
                assert dv.get("PLACE") == "FAC"
    assert from_adx == expected
    assert "incidence_all" in export.skipped_indicators
    assert export.skipped_units  # the other children of province 01


def test_periods_and_mapping_errors() -> None:
    assert [dhis2_period(parse_period(p)) for p in ("2026-10", "2026-Q3", "2026-H2", "2026")] == [
        "202610",
        "2026Q3",
        "2026S2",
        "2026",
    ]
    with pytest.raises(BadRequest, match="no period type"):
        dhis2_period(parse_period("2026-9M"))
    mapping = Dhis2Mapping.model_validate(
        {"orgUnits": {}, "indicators": {"no_such": {"numerator": {"dataElement": "s46m5MS0hxu"}}}}
    )
    with pytest.raises(BadRequest, match="no_such"):
        build_export([], mapping, "2026-10")
    with pytest.raises(ValueError):
        Dhis2Mapping.model_validate({"orgUnits": {"01": {"id": "not a uid"}}, "indicators": {}})


def test_the_cli_writes_both_documents(store: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(MAPPING))
    out_json, out_adx = tmp_path / "out.json", tmp_path / "out.adx.xml"
    args = ["export", "dhis2", "--period", "2026-10", "--unit", "01", "--mapping", str(mapping),
            "--as", "province:01", "--json", str(out_json), "--adx", str(out_adx),
            "--store-root", str(store)]  # fmt: skip
    env = {"TUYEN_ACCESS_LOG": str(tmp_path / "access.log")}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert len(orjson.loads(out_json.read_bytes())["dataValues"]) == 10
    # no --store-root: the root of the unit's province under TUYEN_STORE_ROOT (province-01)
    owners = tmp_path / "owners"
    owners.mkdir()
    (owners / "province-01").symlink_to(store)
    again = tmp_path / "again.json"
    default = [*args[:-6], "--json", str(again)]
    result = CliRunner().invoke(app, default, env={**env, "TUYEN_STORE_ROOT": str(owners)})
    assert result.exit_code == 0, result.output
    assert orjson.loads(again.read_bytes()) == orjson.loads(out_json.read_bytes())
    assert out_adx.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<adx ')
    refused = CliRunner().invoke(app, [*args[:-4], "--as", "province:79", *args[-4:]], env=env)
    assert refused.exit_code == 3
