"""Report periods and working-day deadlines. Pure.

Syntax: ``2026-10`` (month), ``2026-Q3`` (quarter), ``2026-H1`` (half year), ``2026-9M``
(January to September), ``2026`` (year). Every period is a contiguous range of months.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from schemas.hierarchy import VN_TZ
from sinks.reports.exceptions import BadRequest

__all__ = [
    "Period",
    "add_months",
    "month_end",
    "month_index",
    "month_start",
    "parse_period",
    "working_day_deadline",
]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_HALF = re.compile(r"^(\d{4})-H([12])$")
_NINE = re.compile(r"^(\d{4})-9M$")
_YEAR = re.compile(r"^(\d{4})$")


def add_months(month: str, n: int) -> str:
    """``add_months("2026-11", 2) == "2027-01"``."""
    y, m = int(month[:4]), int(month[5:7])
    idx = y * 12 + (m - 1) + n
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_index(month: str) -> int:
    """``year × 12 + month − 1`` of ``YYYY-MM`` (month arithmetic; SQL macro ``_mi``)."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def month_end(month: str) -> date:
    """Last calendar day of ``month``."""
    return month_start(add_months(month, 1)) - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Period:
    """A report period: its label and its first and last month (``YYYY-MM``, inclusive)."""

    label: str
    first: str
    last: str

    @property
    def months(self) -> tuple[str, ...]:
        out = [self.first]
        while out[-1] < self.last:
            out.append(add_months(out[-1], 1))
        return tuple(out)

    @property
    def start(self) -> date:
        return month_start(self.first)

    @property
    def end(self) -> date:
        """Last day of the period."""
        return month_end(self.last)

    @property
    def kind(self) -> str:
        n = len(self.months)
        return {1: "month", 3: "quarter", 6: "half-year", 9: "nine-months", 12: "year"}[n]

    def __str__(self) -> str:
        return self.label


def parse_period(text: str) -> Period:
    """Parse a period label; ``BadRequest`` when it is not one of the five forms."""
    s = text.strip().upper()
    if m := _MONTH.match(s):
        return Period(s, s, s)
    if m := _QUARTER.match(s):
        y, q = m.group(1), int(m.group(2))
        return Period(s, f"{y}-{3 * q - 2:02d}", f"{y}-{3 * q:02d}")
    if m := _HALF.match(s):
        y, h = m.group(1), int(m.group(2))
        return Period(s, f"{y}-{6 * h - 5:02d}", f"{y}-{6 * h:02d}")
    if m := _NINE.match(s):
        return Period(s, f"{m.group(1)}-01", f"{m.group(1)}-09")
    if m := _YEAR.match(s):
        return Period(s, f"{m.group(1)}-01", f"{m.group(1)}-12")
    raise BadRequest(f"bad period {text!r}: use YYYY-MM, YYYY-Q1..Q4, YYYY-H1/H2, YYYY-9M or YYYY")


def working_day_deadline(
    period_end: date, working_days: int, holidays: Iterable[date] = ()
) -> datetime:
    """The instant (Vietnam time, exclusive) by which data for a period ending on
    ``period_end`` is on time: the end of the ``working_days``-th working day (Mon–Fri, not a
    holiday) after ``period_end``."""
    off = frozenset(holidays)
    day = period_end
    left = working_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            left -= 1
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=VN_TZ)
