"""Report settings (frozen; built by the entry point, never read from the environment)."""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from sinks.reports.calendar import DEFAULT_REGIME, REGIMES, ReportingRegime, WorkingCalendar
from sinks.reports.exceptions import BadRequest
from sinks.reports.periods import month_end

__all__ = ["SOURCE_TIER", "ReportConfig", "regime", "source_tier"]


def regime(name: str) -> ReportingRegime:
    """The reporting regime called ``name`` (``BadRequest`` when unknown)."""
    try:
        return REGIMES[name]
    except KeyError:
        raise BadRequest(f"unknown reporting regime {name!r}: use {', '.join(REGIMES)}") from None


#: The store tier a report's facts are read from, by report tier. National reports read the
#: province tiers' record-level data (the national tier carries no station attribution of a
#: person's records and no health-id links: docs/reports.md, "What the national indicators
#: need") and leave their subtree only as suppressed aggregates.
SOURCE_TIER: dict[str, str] = {
    "national": "province",
    "province": "province",
    "district": "district",
}


def source_tier(report_tier: str) -> str:
    """The store tier (catalog) to open for a report at ``report_tier``."""
    return SOURCE_TIER.get(report_tier, "province")


class ReportConfig(BaseModel):
    """Deadlines and presentation knobs of the reports.

    A unit's report for a month is on time when it reached the broker before the end of the
    N-th working day after the month (Vietnam time): N from ``deadline_working_days`` when
    given, else from the reporting ``regime`` (default Circular 37/2019: 5/15/25). Working
    days are Monday to Friday minus Vietnam's public holidays (``public_holidays``; Tết and
    substituted days included) and ``holidays`` (extra days off), plus the Saturdays the
    government makes working days.

    ``suppression_threshold``/``suppress_tiers``: the small-cell rule of every report whose
    tier leaves its subtree (:mod:`sinks.reports.smallcells`), whatever the output format.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    regime: ReportingRegime = Field(default_factory=lambda: REGIMES[DEFAULT_REGIME])
    deadline_working_days: dict[str, int] | None = None
    holidays: frozenset[date] = frozenset()
    public_holidays: bool = True
    trend_months: int = Field(default=6, ge=1, le=36, description="trend length for a month")
    suppression_threshold: int = Field(
        default=5,
        ge=1,
        description="small cells: counts in 1..threshold-1 of a report that leaves its subtree "
        "are suppressed, with complementary cells (1 turns suppression off)",
    )
    suppress_tiers: frozenset[str] = Field(
        default=frozenset({"national"}),
        description="reports at these tiers, or for principals of these tiers, leave their "
        "subtree (published, or read outside the province): suppressed",
    )

    @property
    def working_days(self) -> dict[str, int]:
        return self.deadline_working_days or self.regime.deadline_working_days

    @cached_property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(self.holidays, public_holidays=self.public_holidays)

    def deadline(self, tier: str, month: str) -> datetime:
        """When ``tier``'s report for ``month`` is due (exclusive, Vietnam time)."""
        return self.calendar.deadline(month_end(month), self.working_days[tier])
