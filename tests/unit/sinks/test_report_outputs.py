"""HTML (a chart per indicator), CSV and Parquet outputs, and the rich table."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from schemas.hierarchy import Hierarchy
from sinks.reports import Report
from sinks.reports.render import render_html, render_tables, write_csv, write_parquet
from tests.report_store import Stores
from tests.unit.sinks.test_report_indicators import scenario


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    h = Hierarchy.default()
    stores = Stores(tmp_path_factory.mktemp("outputs"), scenario(h))
    try:
        return stores.report(h, "health", "province", "01", "2026-Q4", trend=True)
    finally:
        stores.close()


def test_html_has_a_bar_chart_and_a_trend_per_indicator(report: Report) -> None:
    page = render_html(report)
    shown = report.shown_indicators()
    sections = re.findall(r'<section class="indicator" id="([a-z0-9_]+)"', page)
    assert sections == [i.code for i in shown]
    assert page.count('<svg class="bar-chart"') == len(shown)
    assert page.count('<svg class="trend-chart"') == len(shown)
    # one bar per child unit in each chart
    assert page.count('class="bar"') == len(shown) * len(report.children)
    assert "<script" not in page and "<link" not in page and 'src="http' not in page
    assert "Hà Nội" in page


def test_trend_covers_the_months_of_the_period(report: Report) -> None:
    months = sorted({p.period for p in report.trend})
    assert months == ["2026-10", "2026-11", "2026-12"]
    oct_ = next(p for p in report.trend if p.period == "2026-10" and p.indicator == "anc4")
    assert (oct_.numerator, oct_.denominator) == (
        report.numerator("anc4"),
        report.denominator("anc4"),
    )


def test_csv_and_parquet_hold_every_cell(report: Report, tmp_path: Path) -> None:
    write_parquet(report, tmp_path / "r.parquet")
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == len(report.cells)
    buf = io.BytesIO()
    write_csv(report, buf)
    csv = pacsv.read_csv(io.BytesIO(buf.getvalue()))
    assert csv.num_rows == len(report.cells)
    rows = [
        r
        for r in table.to_pylist()
        if r["indicator"] == "facility_deliveries" and r["level"] == "unit"
    ]
    assert (rows[0]["numerator"], rows[0]["denominator"]) == (2, 3)
    assert rows[0]["value"] == pytest.approx(200 / 3)
    per_year = [r for r in table.to_pylist() if r["indicator"] == "incidence_all"]
    assert per_year[0]["scaling"] == "not annualised: the rate of 3 months"


def test_rich_table_lists_indicators_and_children(report: Report) -> None:
    console = Console(file=io.StringIO(), width=400)
    render_tables(report, console)
    text: Any = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Deliveries in a health facility" in text
    assert "KV001" in text


def test_docs_list_every_indicator_as_the_code_defines_it() -> None:
    from sinks.reports import INDICATORS
    from sinks.reports.catalogue import replace_section

    text = (Path(__file__).parents[3] / "docs" / "reports.md").read_text(encoding="utf-8")
    assert replace_section(text) == text, (
        "run: python -m sinks.reports.catalogue --write docs/reports.md"
    )
    for ind in INDICATORS:
        assert f"`{ind.code}`" in text, ind.code
