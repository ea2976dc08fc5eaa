"""Rich terminal tables: the unit's indicators, then a breakdown by child unit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sinks.reports.indicators import Indicator
from sinks.reports.model import Report
from sinks.reports.render.fmt import fmt_int, fmt_value

__all__ = ["render_tables"]

_UNIT_WIDTH = 28  # unit code and name column
_COLUMN_WIDTH = 14  # one indicator column
_MAX_EMPTY_SHOWN = 12  # with more children, those without any data are left out


def render_tables(report: Report, console: Console) -> None:
    """Print the report: one summary table and one breakdown table."""
    title = (
        f"{report.kind} · {report.tier} {report.unit_code} {report.unit_name} · "
        f"{report.period.label} ({report.period.first}..{report.period.last}) · "
        f"hierarchy {report.hierarchy_mode}"
    )
    summary = Table(title=title, title_justify="left", caption="\n".join(report.about()),
                    caption_justify="left")  # fmt: skip
    columns = ["indicator", "value", "unit", "numerator", "denominator"]
    revisions = report.has_revisions
    if revisions:
        columns += ["as submitted", "revision"]
    for col in columns:
        summary.add_column(col, justify="left" if col in {"indicator", "unit"} else "right")
    shown = report.shown_indicators()
    for ind in shown:
        c = report.cell(ind.code)
        row = [ind.name, fmt_value(c.value), ind.unit, fmt_int(c.numerator),
               fmt_int(c.denominator)]  # fmt: skip
        if revisions:
            row += [fmt_value(c.submitted_value), "revised" if c.revised else ""]
        summary.add_row(*row)
    console.print(summary)
    if report.suppression:
        s = report.suppression
        console.print(
            f"(small cells: counts 1..{s.threshold - 1} shown as –, {s.primary} small and "
            f"{s.complementary} complementary cells suppressed)"
        )
    if not report.children:
        return
    children = list(report.children)
    hidden = 0
    if len(children) > _MAX_EMPTY_SHOWN:
        with_data = [
            (code, name)
            for code, name in children
            if any(report.numerator(ind.code, code) for ind in shown)
        ]
        hidden = len(children) - len(with_data)
        children = with_data
    per_table = max(1, (console.width - _UNIT_WIDTH) // _COLUMN_WIDTH)
    if len(children) <= per_table:  # few children: one row per indicator reads best
        table = Table(title="by child unit", title_justify="left")
        table.add_column("indicator", max_width=_UNIT_WIDTH)
        for code, name in children:
            table.add_column(f"{code} {name}", justify="right")
        for ind in shown:
            table.add_row(ind.name, *(fmt_value(report.value(ind.code, c)) for c, _ in children))
        console.print(table)
    else:
        _wide(report, console, shown, children, per_table)
    if hidden:
        console.print(f"({hidden} child units without data not shown)")


def _wide(
    report: Report,
    console: Console,
    shown: tuple[Indicator, ...] | list[Indicator],
    children: list[tuple[str, str]],
    per_table: int,
) -> None:
    """Many children: one row per child, the indicators split over tables that fit."""
    for start in range(0, len(shown), per_table):
        part = shown[start : start + per_table]
        breakdown = Table(title="by child unit", title_justify="left")
        breakdown.add_column("unit", min_width=12, max_width=_UNIT_WIDTH - 4)
        for ind in part:
            breakdown.add_column(ind.code, justify="right", overflow="fold")
        for code, name in children:
            breakdown.add_row(
                f"{code} {name}", *(fmt_value(report.value(ind.code, code)) for ind in part)
            )
        console.print(breakdown)
