"""Rich terminal tables: the unit's indicators, then a breakdown by child unit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sinks.reports.model import Report
from sinks.reports.render.fmt import fmt_int, fmt_value

__all__ = ["render_tables"]


def render_tables(report: Report, console: Console) -> None:
    """Print the report: one summary table and one breakdown table."""
    title = (
        f"{report.kind} · {report.tier} {report.unit_code} {report.unit_name} · "
        f"{report.period.label} ({report.period.first}..{report.period.last}) · "
        f"hierarchy {report.hierarchy_mode}"
    )
    summary = Table(title=title, title_justify="left")
    for col in ("indicator", "value", "unit", "numerator", "denominator"):
        summary.add_column(col, justify="left" if col in {"indicator", "unit"} else "right")
    shown = report.shown_indicators()
    for ind in shown:
        c = report.cell(ind.code)
        summary.add_row(
            ind.name, fmt_value(c.value), ind.unit, fmt_int(c.numerator), fmt_int(c.denominator)
        )
    console.print(summary)
    if not report.children:
        return
    breakdown = Table(title=f"by {'child unit'}", title_justify="left")
    breakdown.add_column("unit")
    for ind in shown:
        breakdown.add_column(ind.code, justify="right")
    for code, name in report.children:
        breakdown.add_row(
            f"{code} {name}", *(fmt_value(report.value(ind.code, code)) for ind in shown)
        )
    console.print(breakdown)
