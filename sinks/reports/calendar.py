"""Working days and reporting deadlines: Vietnam's calendar and the reporting regimes.

A working day is Monday to Friday, except Vietnam's public holidays (Labour Code 2019
Art. 112: New Year, Tết — the Lunar New Year days —, Hùng Kings' day, 30 April, 1 May,
National Day, and the days the government moves), plus the Saturdays the government makes
working days when it joins a holiday to a weekend. Both come from the ``holidays`` package
(``holidays.country_holidays("VN")``: its ``is_working_day`` knows the substituted days off
and the weekend workdays, year by year). Extra days off (a province's own, or a year the
package does not know yet) can be added.

A reporting regime says how many working days after a period each tier has to report:
Circular 37/2019/TT-BYT gives 5 (commune), 15 (district) and 25 (province) working days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Final

import holidays
from pydantic import BaseModel, ConfigDict, Field

from schemas.hierarchy import VN_TZ

__all__ = ["DEFAULT_REGIME", "REGIMES", "ReportingRegime", "WorkingCalendar"]


class ReportingRegime(BaseModel):
    """Deadlines of one reporting regime, in working days after the period, per tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    deadline_working_days: dict[str, int] = Field(
        description="tier (station, district, province) -> working days after the period"
    )
    source: str = ""


REGIMES: Final[dict[str, ReportingRegime]] = {
    "circular-37-2019": ReportingRegime(
        name="circular-37-2019",
        deadline_working_days={"station": 5, "district": 15, "province": 25},
        source="MOH Circular 37/2019/TT-BYT, in force 1 April 2020: commune 5, district 15, "
        "province 25 working days after the end of the reporting period",
    ),
}
DEFAULT_REGIME: Final = "circular-37-2019"


@lru_cache(maxsize=64)
def _vietnam(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year)


class WorkingCalendar:
    """Vietnam's working days (``public_holidays``) minus ``extra_holidays``."""

    def __init__(self, extra_holidays: Iterable[date] = (), *, public_holidays: bool = True):
        self.extra = frozenset(extra_holidays)
        self.public = public_holidays

    def is_working_day(self, day: date) -> bool:
        if day in self.extra:
            return False
        if self.public:
            return bool(_vietnam(day.year).is_working_day(day))
        return day.weekday() < 5

    def deadline(self, period_end: date, working_days: int) -> datetime:
        """The instant (Vietnam time, exclusive) by which a report on a period ending on
        ``period_end`` is on time: the end of the ``working_days``-th working day after it."""
        day, left = period_end, working_days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=VN_TZ)

    def holidays_in(self, year: int) -> list[tuple[date, str]]:
        """The public holidays of ``year`` (for the documentation and the CLI)."""
        return sorted(_vietnam(year).items()) if self.public else []
