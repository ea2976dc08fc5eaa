"""Report settings (frozen; built by the entry point, never read from the environment)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SOURCE_TIER", "ReportConfig", "source_tier"]

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

    ``deadline_working_days``: a unit's data for a month is on time when it arrived
    (``received_time``) before the end of the N-th working day (Mon–Fri, minus ``holidays``)
    after the month ends, in Vietnam time.

    ``suppression_threshold``/``suppress_tiers``: the small-cell rule of every report whose
    tier leaves its subtree (:mod:`sinks.reports.smallcells`), whatever the output format.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    deadline_working_days: dict[str, int] = Field(
        default_factory=lambda: {"station": 5, "district": 15, "province": 25}
    )
    holidays: frozenset[date] = frozenset()
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
