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
    #: the period scaling of the value (12 / months to annualise or pro-rate a target)
    scale: float = 1.0
    #: the parts as submitted (frozen at approval), on a ``latest`` report with approvals
    submitted: tuple[int | None, int | None] | None = None
    suppressed: bool = False

    @property
    def value(self) -> float | None:
        if self.suppressed or self.numerator is None:
            return None
        return self.indicator.value(self.numerator, self.denominator, self.scale)

    @property
    def submitted_value(self) -> float | None:
        if self.submitted is None or self.submitted[0] is None:
            return None
        return self.indicator.value(self.submitted[0], self.submitted[1], self.scale)

    @property
    def revised(self) -> bool:
        """The latest parts differ from the parts as submitted."""
        return self.submitted is not None and self.submitted != (
            self.numerator,
            self.denominator,
        )


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
    basis: str = "latest"
    annualised: bool = False
    population_basis: str = ""
    #: children with at least one station report submitted in the period
    reporting: tuple[str, ...] = ()
    #: station-months approved in the report's scope (whose "as submitted" figures exist)
    approved_station_months: int = 0
    #: set when the report left its subtree and its small cells were suppressed
    suppression: Suppressed | None = None

    @property
    def has_revisions(self) -> bool:
        return any(c.submitted is not None for c in self.cells)

    def about(self) -> list[str]:
        """What a reader must know to read the figures (printed under every output's title)."""
        lines = []
        if self.basis == "submitted":
            lines.append(
                "As submitted: each station's figures as they stood when the unit above "
                f"approved its month ({self.approved_station_months} station-months approved; "
                "months not approved count nothing)."
            )
        elif self.has_revisions:
            lines.append(
                "Latest figures; 'as submitted' shows them as approved "
                f"({self.approved_station_months} station-months), a difference is a revision "
                "made since."
            )
        children = {code: name for code, name in self.children}
        label = {"national": "provinces", "province": "districts", "district": "stations"}
        if self.tier in label:
            named = ", ".join(f"{c} {children.get(c, '')}".strip() for c in self.reporting[:12])
            more = f" and {len(self.reporting) - 12} more" if len(self.reporting) > 12 else ""
            lines.append(
                f"{label[self.tier].capitalize()} reporting (a station report submitted in the "
                f"period): {len(self.reporting)} of {len(self.children)}"
                + (f" ({named}{more})" if self.reporting else "")
                + "."
            )
        if self.population_basis:
            lines.append(f"Population denominators: {self.population_basis}.")
        notes = sorted({n for ind in self.indicators if (n := self.scaling_note(ind))})
        if notes:
            lines.append("Periods: " + "; ".join(notes) + ".")
        return lines

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

    def scaling_note(self, indicator: Indicator) -> str:
        """How the period changes ``indicator``'s value, in words (empty when it does not)."""
        months = len(self.period.months)
        if indicator.scaling == "prorated_target":
            return "" if months == 12 else f"annual target pro-rated to {months} months"
        if indicator.scaling == "per_year" and months != 12:
            if self.annualised:
                return f"annualised from {months} months"
            return f"not annualised: the rate of {months} month{'s' if months > 1 else ''}"
        return ""

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
                "scaling": self.scaling_note(c.indicator),
                "basis": self.basis,
                "submitted_numerator": c.submitted[0] if c.submitted else None,
                "submitted_denominator": c.submitted[1] if c.submitted else None,
                "submitted_value": c.submitted_value,
                "suppressed": c.suppressed,
            }
            for c in self.cells
        ]
