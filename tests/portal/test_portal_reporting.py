"""The portal's report adapter on a real store: station views, store choice, cache."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from schemas.hierarchy import Hierarchy
from sinks import catalog
from sinks.catalog_sql import STATE_DIR
from sinks.compact import compact
from sinks.config import CompactConfig
from sinks.portal.reporting import AccessDenied, ReportQuery, Reports, period_family, shift_period
from sinks.portal.scope import parse_scope
from sinks.portal.stores import StoreAccess, StoreKey
from sinks.reports import parse_period
from sinks.reports.facts import current_reads
from sinks.roots import StoreRoots
from tests.helpers import record_decisions
from tests.portal.conftest import PROVINCE, StoreData


@pytest.fixture(scope="module")
def reports(portal_store: StoreData) -> Reports:
    h = Hierarchy.default()
    return Reports(StoreAccess(StoreRoots.under(str(portal_store.root)), h, generation_ttl=0), h)


def _month(reports: Reports) -> str:
    months = reports.stores.months(StoreKey("province", (PROVINCE,)))
    return months[-1]


def test_a_station_page_is_its_row_in_the_district_report(reports: Reports) -> None:
    scope = parse_scope(f"province:{PROVINCE}")
    month = _month(reports)
    h = reports.h
    district = h.children(PROVINCE, parse_period(month).end)[0].code
    station = h.children(district, parse_period(month).end)[0].code
    whole = reports.run(scope, ReportQuery("health", district, month))
    own = reports.run(scope, ReportQuery("health", station, month, trend=True))
    assert own.tier == "station" and own.children == ()
    for cell in own.cells:
        assert (cell.numerator, cell.denominator) == (
            whole.numerator(cell.indicator.code, station),
            whole.denominator(cell.indicator.code, station),
        )
    months = sorted({p.period for p in own.trend})
    assert len(months) == 6 and months[-1] == month
    last = [p for p in own.trend if p.period == month]
    assert {p.indicator: p.numerator for p in last} == {
        c.indicator.code: c.numerator for c in own.cells
    }
    # a station account sees its station and nothing else
    alone = parse_scope(f"station:{station}")
    assert reports.run(alone, ReportQuery("health", station, month)).cells == own.cells
    with pytest.raises(AccessDenied):
        reports.run(alone, ReportQuery("health", district, month))


def test_each_scope_opens_only_its_store(reports: Reports) -> None:
    at = date.today()
    stores = reports.stores
    # a national account reads every province's record-level tier (its reports suppressed:
    # sinks.reports.smallcells); the pseudonymised national tier serves the public page only
    assert stores.key(parse_scope("national"), "district", at) == StoreKey("district", None)
    assert stores.key(parse_scope("national"), "national", at) == StoreKey("province", None)
    assert stores.public_key() == StoreKey("national", None)
    assert stores.key(parse_scope(f"province:{PROVINCE}"), "province", at) == StoreKey(
        "province", (PROVINCE,)
    )
    assert stores.key(parse_scope(f"province:{PROVINCE}"), "district", at).tier == "district"
    with pytest.raises(AccessDenied):
        reports.run(parse_scope("province:04"), ReportQuery("health", PROVINCE, _month(reports)))


def test_results_are_cached_until_the_store_changes(
    reports: Reports, portal_store: StoreData
) -> None:
    scope = parse_scope(f"province:{PROVINCE}")
    q = ReportQuery("resources", PROVINCE, _month(reports))
    first = reports.run(scope, q)
    assert reports.run(scope, q) is first
    own = StoreRoots.under(str(portal_store.root)).province_root(PROVINCE)
    some = next((Path(own) / "province").rglob("*.parquet"))
    copy = some.with_name("copy+0+0.parquet")
    shutil.copy(some, copy)
    try:
        again = reports.run(scope, q)
        assert again is not first and again.cells == first.cells  # views dedupe the copy
    finally:
        copy.unlink()


def test_periods_move_by_their_own_kind() -> None:
    assert shift_period(parse_period("2026-01"), -1) == "2025-12"
    assert shift_period(parse_period("2026-Q1"), -1) == "2025-Q4"
    assert shift_period(parse_period("2026-H2"), 1) == "2027-H1"
    assert shift_period(parse_period("2026-9M"), 1) == "2027-9M"
    assert shift_period(parse_period("2026"), -2) == "2024"
    assert [label for _, label in period_family(parse_period("2026-08"))] == [
        "2026-08", "2026-Q3", "2026-H2", "2026-9M", "2026",
    ]  # fmt: skip


def test_a_national_accounts_pages_and_downloads_are_suppressed(reports: Reports) -> None:
    """The national scope leaves the provinces' subtrees: its reports (and so its CSV,
    Parquet and FHIR downloads, written from the same Report) hide small cells; the
    province's own account sees the exact figures."""
    month = _month(reports)
    national = reports.run(parse_scope("national"), ReportQuery("health", PROVINCE, month))
    own = reports.run(parse_scope(f"province:{PROVINCE}"), ReportQuery("health", PROVINCE, month))
    assert national.suppression is not None and own.suppression is None
    for cell in national.cells:
        if cell.indicator.kind == "health" and cell.numerator is not None:
            assert not 0 < cell.numerator < 5
            assert cell.numerator == own.numerator(cell.indicator.code, cell.unit_code)
    text = Reports.csv_bytes(national).decode()
    assert text.splitlines()[0].endswith('"suppressed"')
    if any(c.suppressed for c in national.cells):
        assert "true" in text and b"masked" in Reports.fhir_bytes(national)


def test_a_request_decides_only_what_its_kind_reads(
    portal_store: StoreData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a compacted copy of the store (current-state files), a report request's snapshot
    decides only the record types its kind reads (``current_reads``), and the report is the
    one the uncompacted store gives."""
    h = Hierarchy.default()
    copy = tmp_path / "store"
    shutil.copytree(portal_store.root, copy)
    own = StoreRoots.under(str(copy)).province_root(PROVINCE)
    months = StoreAccess(StoreRoots.under(str(copy)), h).months(StoreKey("province", (PROVINCE,)))
    compact(CompactConfig(store_root=own, min_file_age_s=0, min_files=1, before_month=months[-1]))
    assert any((Path(own) / "province" / STATE_DIR).rglob("*.parquet"))
    decided = record_decisions(monkeypatch)
    scope = parse_scope(f"province:{PROVINCE}")
    fresh = Reports(StoreAccess(StoreRoots.under(str(portal_store.root)), h), h)
    compacted = Reports(StoreAccess(StoreRoots.under(str(copy)), h), h)
    for kind in ("health", "resources"):
        q = ReportQuery(kind, PROVINCE, months[-1], trend=True)  # and the compacted months
        decided.clear()
        catalog._DECISIONS._kept.clear()
        got = compacted.run(scope, q)
        assert decided and set(decided) <= current_reads(kind), kind
        want = fresh.run(scope, q)
        assert (got.cells, got.trend) == (want.cells, want.trend)
