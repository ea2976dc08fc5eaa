"""The result of a report: numerators and denominators per indicator per unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sinks.reports.indicators import Indicator
from sinks.reports.periods import Period

__all__ = ["Cell", "Report", "Suppressed", "TrendPoint"]

Level = Literal["unit", "child"]


@dataclass(frozen=True, slots=True)
class Cell:
    """One indicator for one unit: aggregated parts and the value divided last."""

    unit_code: str
    unit_name: str
    level: Level
    indicator: Indicator
    numerator: int | None  # None: suppressed (a small cell, see sinks.reports.smallcells)
    denominator: int | None
    suppressed: bool = False

    @property
    def value(self) -> float | None:
        if self.suppressed or self.numerator is None:
            return None
        return self.indicator.value(self.numerator, self.denominator)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The report unit's indicator in one sub-period (for the trend chart)."""

    period: str
    indicator: str
    numerator: int | None
    denominator: int | None
    value: float | None
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Suppressed:
    """How a report's small cells were suppressed: the ``threshold`` and how many cells were
    withheld as small (``primary``) or to protect them (``complementary``)."""

    threshold: int
    primary: int
    complementary: int


@dataclass(frozen=True)
class Report:
    """A report for one unit and its children over one period."""

    kind: str
    tier: str
    unit_code: str
    unit_name: str
    period: Period
    hierarchy_mode: str
    principal: str
    reference_date: date
    generated_at: datetime
    indicators: tuple[Indicator, ...]
    children: tuple[tuple[str, str], ...]
    cells: tuple[Cell, ...]
    trend: tuple[TrendPoint, ...] = field(default=())
    #: set when the report left its subtree and its small cells were suppressed
    suppression: Suppressed | None = None

    def _index(self) -> dict[tuple[str, str], Cell]:
        cache: dict[tuple[str, str], Cell] | None = self.__dict__.get("_idx")
        if cache is None:
            cache = {(c.indicator.code, c.unit_code): c for c in self.cells}
            object.__setattr__(self, "_idx", cache)
        return cache

    def cell(self, indicator: str, unit: str | None = None) -> Cell:
        """The cell of ``indicator`` for ``unit`` (default: the report's unit)."""
        return self._index()[(indicator, unit or self.unit_code)]

    def numerator(self, indicator: str, unit: str | None = None) -> int | None:
        return self.cell(indicator, unit).numerator

    def denominator(self, indicator: str, unit: str | None = None) -> int | None:
        return self.cell(indicator, unit).denominator

    def value(self, indicator: str, unit: str | None = None) -> float | None:
        return self.cell(indicator, unit).value

    def unit_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.level == "unit"]

    def child_cells(self, indicator: str) -> list[Cell]:
        return [c for c in self.cells if c.level == "child" and c.indicator.code == indicator]

    def shown_indicators(self) -> tuple[Indicator, ...]:
        """Indicators worth displaying: per-disease incidence only where there are cases."""
        out = []
        for ind in self.indicators:
            per_disease = ind.code.startswith("incidence_") and ind.code != "incidence_all"
            if per_disease and self.numerator(ind.code) == 0:
                continue
            out.append(ind)
        return tuple(out)

    def rows(self) -> list[dict[str, Any]]:
        """Long format, one row per (unit, indicator): for CSV/Parquet."""
        return [
            {
                "kind": self.kind,
                "tier": self.tier,
                "report_unit": self.unit_code,
                "period": self.period.label,
                "period_first_month": self.period.first,
                "period_last_month": self.period.last,
                "hierarchy": self.hierarchy_mode,
                "level": c.level,
                "unit_code": c.unit_code,
                "unit_name": c.unit_name,
                "indicator": c.indicator.code,
                "indicator_name": c.indicator.name,
                "numerator": c.numerator,
                "denominator": c.denominator,
                "multiplier": c.indicator.multiplier,
                "value": c.value,
                "value_unit": c.indicator.unit,
                "suppressed": c.suppressed,
            }
            for c in self.cells
        ]
