"""HTML (a chart per indicator), CSV and Parquet outputs, and the rich table."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from schemas.hierarchy import Hierarchy
from sinks.reports import Report, run_report
from sinks.reports.memcatalog import build_catalog
from sinks.reports.render import render_html, render_tables, write_csv, write_parquet
from tests.unit.test_report_indicators import scenario


@pytest.fixture(scope="module")
def report() -> Report:
    h = Hierarchy.default()
    con = build_catalog(duckdb.connect(), scenario(h))
    return run_report(con, h, "health", "province", "01", "2026-Q4", "as-recorded", "province:01",
                      trend=True)  # fmt: skip


def test_html_has_a_bar_chart_and_a_trend_per_indicator(report: Report) -> None:
    page = render_html(report)
    shown = report.shown_indicators()
    sections = re.findall(r'<section class="indicator" id="([a-z0-9_]+)"', page)
    assert sections == [i.code for i in shown]
    assert page.count('<svg class="bar-chart"') == len(shown)
    assert page.count('<svg class="trend-chart"') == len(shown)
    # one bar per child unit in each chart
    assert page.count('class="bar"') == len(shown) * len(report.children)
    assert "<script" not in page and "https://" not in page and "http://cdn" not in page
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
        r for r in table.to_pylist() if r["indicator"] == "facility_births" and r["level"] == "unit"
    ]
    assert (rows[0]["numerator"], rows[0]["denominator"]) == (2, 3)
    assert rows[0]["value"] == pytest.approx(200 / 3)


def test_rich_table_lists_indicators_and_children(report: Report) -> None:
    console = Console(file=io.StringIO(), width=400)
    render_tables(report, console)
    text: Any = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Births at a health facility" in text
    assert "KV001" in text
