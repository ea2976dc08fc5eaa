"""Small cells in every report output that leaves its subtree (``sinks.reports.smallcells``):
the national report is suppressed once, in the report layer, and every format shows it so."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fhir.resources.R4B.measurereport import MeasureReport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from schemas.hierarchy import Hierarchy
from sinks.reports import Report, ReportConfig
from sinks.reports.render import (
    measure_reports,
    render_html,
    render_tables,
    write_csv,
    write_parquet,
)
from sinks.reports.render.fhir import validate
from sinks.reports.smallcells import _table
from sinks.reports.suppress import determined
from tests.report_store import Stores
from tests.unit.sinks.test_report_additivity import build, record
from tests.unit.sinks.test_report_indicators import EXACT, scenario

H = Hierarchy.default()


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    stores = Stores(tmp_path_factory.mktemp("smallcells"), scenario(H))
    yield stores
    stores.close()


def _report(con: Stores, config: ReportConfig | None = None, tier: str = "national") -> Report:
    """The report as its principal gets it (``config`` default: the default settings)."""
    unit, principal = (None, "national") if tier == "national" else ("01", "province:01")
    return con.report(
        H, "health", tier, unit, "2026-Q4", principal=principal, config=config or ReportConfig(),
        trend=True,
    )  # fmt: skip


def _published_counts(r: Report) -> list[int]:
    out = [v for c in r.cells for v in (c.numerator, c.denominator) if v is not None]
    out += [v for p in r.trend for v in (p.numerator, p.denominator) if v is not None]
    return out


def assert_safe(exact: Report, shown: Report, threshold: int) -> None:
    """No published person count is small, and no suppressed cell is recoverable from the
    published ones by any combination of the report's equations."""
    table = _table(exact, threshold)
    hidden = {
        k
        for k in table.values
        if k[0] == "r" or _is_hidden(shown, k)  # type: ignore[index]
    }
    for k, v in table.values.items():
        if k not in hidden:
            assert not 0 < v < threshold, (k, v)
    assert not determined(hidden, table.equations)


def _is_hidden(r: Report, key: Any) -> bool:
    part, ind, where = key
    if where.startswith("trend:"):
        p = next(p for p in r.trend if p.indicator == ind and p.period == where[6:])
        return (p.numerator if part == "n" else p.denominator) is None
    c = r.cell(ind, where)
    return (c.numerator if part == "n" else c.denominator) is None


def test_the_national_report_suppresses_small_cells_and_their_complements(con: Any) -> None:
    exact, shown = _report(con, EXACT), _report(con)
    assert exact.suppression is None
    assert shown.suppression is not None and shown.suppression.threshold == 5
    assert shown.suppression.primary > 0
    assert any(c.suppressed for c in shown.cells)
    assert_safe(exact, shown, 5)
    for c in shown.cells:
        if c.suppressed:
            assert c.value is None
        elif c.indicator.kind == "health":
            assert c.numerator == exact.numerator(c.indicator.code, c.unit_code)


def test_a_province_report_for_its_own_subtree_is_not_suppressed(con: Any) -> None:
    r = _report(con, tier="province")
    assert r.suppression is None and not any(c.suppressed for c in r.cells)


def test_the_threshold_and_the_tiers_are_settings(con: Any) -> None:
    ten = _report(con, ReportConfig(suppression_threshold=10))
    assert ten.suppression is not None and ten.suppression.threshold == 10
    assert_safe(_report(con, EXACT), ten, 10)
    province = _report(con, ReportConfig(suppress_tiers=frozenset({"province"})), "province")
    assert province.suppression is not None


def test_csv_and_parquet_leave_suppressed_cells_empty(con: Any, tmp_path: Path) -> None:
    r = _report(con)
    buf = io.BytesIO()
    write_csv(r, buf)
    write_parquet(r, tmp_path / "r.parquet")
    for table in (
        pacsv.read_csv(io.BytesIO(buf.getvalue())),
        pq.read_table(tmp_path / "r.parquet"),
    ):
        rows = table.to_pylist()
        hidden = [row for row in rows if row["suppressed"]]
        assert hidden and all(row["value"] is None for row in hidden)
        for row in rows:
            if row["indicator"] in {i.code for i in r.indicators if i.kind == "health"}:
                for col in ("numerator", "denominator"):
                    assert row[col] is None or not 0 < row[col] < 5, row


def test_fhir_marks_suppressed_populations_masked_and_validates(con: Any) -> None:
    r = _report(con)
    masked = 0
    for res in measure_reports(r):
        validate(res)
        mr: Any = MeasureReport.model_validate(orjson.loads(orjson.dumps(res)))
        for pop in mr.group[0].population:
            if pop.count is None:
                masked += 1
                assert "measureScore" not in res["group"][0]
            else:
                assert not 0 < pop.count < 5 or pop.code.coding[0].code == "denominator"
    assert masked > 0


def test_html_and_the_terminal_table_say_what_was_suppressed(con: Any) -> None:
    r = _report(con)
    html = render_html(r)
    assert 'class="suppressed"' in html and "counts from 1 to 4" in html
    console = Console(file=io.StringIO(), width=200)
    render_tables(r, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "small cells" in out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=30), st.sampled_from(["2026-Q4", "2026-11"]))
def test_no_suppressed_cell_is_recoverable_on_any_store(recs: list[Any], period: str) -> None:
    with tempfile.TemporaryDirectory(prefix="smallcells-") as tmp:
        c = build(recs, Path(tmp))
        try:
            exact = c.report(H, "health", "national", None, period, config=EXACT, trend=True)
            shown = c.report(
                H, "health", "national", None, period, config=ReportConfig(), trend=True
            )
        finally:
            c.close()
    assert_safe(exact, shown, 5)
