"""Report outputs: terminal table, CSV/Parquet, HTML with inline SVG charts, FHIR JSON."""

from sinks.reports.render.fhir import fhir_bundle, measure_reports
from sinks.reports.render.files import to_arrow, write_csv, write_parquet
from sinks.reports.render.html import render_html
from sinks.reports.render.table import render_tables

__all__ = [
    "fhir_bundle",
    "measure_reports",
    "render_html",
    "render_tables",
    "to_arrow",
    "write_csv",
    "write_parquet",
]
