"""Small cells: a report that leaves its subtree is suppressed here, once, for every output.

:func:`run_report` calls :func:`suppress_report` for every report whose tier is in
``ReportConfig.suppress_tiers`` (default: national — what the ministry publishes, what the
national scope of the portal shows and downloads, what the DHIS2 export sends): every output
format (terminal, HTML, CSV, Parquet, FHIR, DHIS2) renders the suppressed :class:`Report`,
none suppresses on its own.

The table handed to :func:`sinks.reports.suppress.suppress`, per health indicator (counts of
persons and their events; resources and completeness count stations and staff, not persons,
and are published as they are):

- cells: the numerator of the report unit, of each child unit and of each trend point; the
  denominator of the same when it is counted from the data (``data`` denominators: live
  births, registered children …); population denominators are public reference data and are
  never cells; and the **complement** ``denominator − numerator`` where it is small (the two
  unvaccinated children of a district whose 20 children 18 were vaccinated are a small cell a
  reader gets by subtraction);
- equations: the unit's numerator (and data denominator) is the sum of its children's; over a
  multi-month period, the sum of its trend points'; a single month's trend point of the
  report month equals the unit's; ``denominator = numerator + complement``; the all-disease
  incidence numerator is the sum of the per-disease ones (each equation only where it holds).

Primary suppression: every cell with ``0 < count < threshold``; complementary: as
:mod:`sinks.reports.suppress` (no suppressed cell is a linear combination of published ones,
whatever equations above a reader combines). A suppressed count is ``None`` in every output,
and so is the value computed from it; ``Cell.suppressed`` says which.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

from sinks.reports.model import Cell, Report, Suppressed, TrendPoint
from sinks.reports.suppress import Equation, suppress

__all__ = ["suppress_report"]

_ALL = "incidence_all"


def _is_person_count(report: Report, code: str) -> bool:
    return report.kind == "health" and any(i.code == code for i in report.indicators)


class _Table:
    """The cells and equations of one report (keys ``(part, indicator, where)``)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.values: dict[Hashable, int] = {}
        self.equations: list[Equation] = []

    def cell(self, key: Hashable, value: int | None) -> bool:
        if value is None:
            return False
        self.values[key] = value
        return True

    def equation(self, total: Hashable, parts: list[Hashable]) -> None:
        known = total in self.values and parts and all(p in self.values for p in parts)
        if known and self.values[total] == sum(self.values[p] for p in parts):
            self.equations.append(Equation(total, tuple(parts)))

    def pair(self, ind: str, where: str, num: int, den: int | None, data_den: bool) -> None:
        """A numerator, its data denominator and their small complement."""
        self.cell(("n", ind, where), num)
        if not data_den or den is None:
            return
        self.cell(("d", ind, where), den)
        rest = den - num
        if 0 < rest < self.threshold:
            self.cell(("r", ind, where), rest)
            self.equation(("d", ind, where), [("n", ind, where), ("r", ind, where)])


def _table(report: Report, threshold: int) -> _Table:
    t = _Table(threshold)
    unit = report.unit_code
    months = list(report.period.months)
    for ind in report.indicators:
        if not _is_person_count(report, ind.code):
            continue
        data_den = ind.denominator_source == "data"
        for c in report.cells:
            if c.indicator.code == ind.code and c.numerator is not None:
                t.pair(ind.code, c.unit_code, c.numerator, c.denominator, data_den)
        children = [c.unit_code for c in report.child_cells(ind.code)]
        for part in ("n", "d"):
            t.equation((part, ind.code, unit), [(part, ind.code, ch) for ch in children])
        points = [p for p in report.trend if p.indicator == ind.code]
        for p in points:
            if p.numerator is not None:
                t.pair(ind.code, f"trend:{p.period}", p.numerator, p.denominator, data_den)
        labels = [p.period for p in points]
        if labels == months and len(months) > 1:  # the period's months add up to it
            for part in ("n", "d"):
                t.equation((part, ind.code, unit), [(part, ind.code, f"trend:{m}") for m in months])
        elif len(months) == 1 and months[0] in labels:  # the report month is one trend point
            for part in ("n", "d"):
                t.equation((part, ind.code, unit), [(part, ind.code, f"trend:{months[0]}")])
    diseases = [
        i.code for i in report.indicators if i.code.startswith("incidence_") and i.code != _ALL
    ]
    wheres = {k[2] for k in t.values if isinstance(k, tuple) and k[1] == _ALL}
    for where in wheres:
        t.equation(("n", _ALL, where), [("n", d, where) for d in diseases])
    return t


def suppress_report(report: Report, threshold: int, *, suppress_zero: bool = False) -> Report:
    """``report`` with its small cells and their complements suppressed (see the module)."""
    t = _table(report, threshold)
    s = suppress(t.values, t.equations, threshold=threshold, suppress_zero=suppress_zero)
    hidden = s.suppressed

    def hide(
        ind: str, where: str, num: int | None, den: int | None
    ) -> tuple[int | None, int | None, bool]:
        n_off = ("n", ind, where) in hidden
        d_off = ("d", ind, where) in hidden
        return (None if n_off else num), (None if d_off else den), n_off or d_off

    cells: list[Cell] = []
    for c in report.cells:
        num, den, off = hide(c.indicator.code, c.unit_code, c.numerator, c.denominator)
        # the figures as submitted are a second count of the same cells that no equation
        # protects: a report that leaves its subtree publishes the latest parts only
        cells.append(replace(c, numerator=num, denominator=den, suppressed=off, submitted=None))
    trend: list[TrendPoint] = []
    for p in report.trend:
        num, den, off = hide(p.indicator, f"trend:{p.period}", p.numerator, p.denominator)
        value = None if off else p.value
        trend.append(replace(p, numerator=num, denominator=den, value=value, suppressed=off))
    return replace(
        report,
        cells=tuple(cells),
        trend=tuple(trend),
        suppression=Suppressed(threshold, len(s.primary), len(s.complementary)),
    )
