"""The demo's last step: catalogs, reports printed and written, live vs stored check."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path

import orjson
from rich.console import Console

from schemas.hierarchy import Hierarchy


def _last_full_month(start: date, end: date) -> str:
    """The latest calendar month wholly inside [start, end], else the end's month."""
    if end.day == calendar.monthrange(end.year, end.month)[1]:
        month = end
    else:
        month = end.replace(day=1) - timedelta(days=1)
        if month.replace(day=1) < start:
            month = end
    return f"{month.year:04d}-{month.month:02d}"


def write_reports(
    out: Path,
    province: str,
    start: date,
    end: date,
    bootstrap: str,
    prefix: str,
    console: Console,
) -> str:
    """Build catalogs, print the national and one province's reports, write HTML and FHIR;
    returns the month reported."""
    from sinks.catalog import build_catalog, open_catalog
    from sinks.reports import AccessLog, run_report, source_tier
    from sinks.reports.render import fhir_bundle, render_html, render_tables

    store = out / "store"
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    build_catalog(str(store), out / "catalog-national.duckdb", "national")
    build_catalog(str(store), out / f"catalog-province-{province}.duckdb", "province")
    h = Hierarchy.default()
    period = _last_full_month(start, end)
    log = AccessLog(out / "access.log")
    runs = [
        ("national", None, "national"),
        ("province", province, f"province:{province}"),
    ]
    for tier, unit, principal in runs:
        con = open_catalog(str(store), source_tier(tier))
        try:
            for kind in ("health", "resources", "completeness"):
                report = run_report(
                    con, h, kind, tier, unit, period, "as-recorded", principal,
                    access_log=log, trend=True,
                )  # fmt: skip
                if kind != "completeness" or tier == "national":
                    render_tables(report, console)
                stem = f"{kind}-{tier}-{unit or 'VN'}-{period}"
                (reports / f"{stem}.html").write_text(render_html(report), encoding="utf-8")
                (reports / f"{stem}.fhir.json").write_bytes(
                    orjson.dumps(fhir_bundle(report), option=orjson.OPT_INDENT_2)
                )
        finally:
            con.close()
    console.print(f"reports written to {reports} (HTML with charts, FHIR MeasureReport bundles)")
    return period
