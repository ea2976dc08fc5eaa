"""Report periods and working-day deadlines."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.hierarchy import VN_TZ
from sinks.reports import BadRequest, parse_period, working_day_deadline
from sinks.reports.periods import add_months, month_end


@pytest.mark.parametrize(
    ("text", "first", "last", "n"),
    [
        ("2026-10", "2026-10", "2026-10", 1),
        ("2026-Q3", "2026-07", "2026-09", 3),
        ("2026-q1", "2026-01", "2026-03", 3),
        ("2026-H1", "2026-01", "2026-06", 6),
        ("2026-H2", "2026-07", "2026-12", 6),
        ("2026-9M", "2026-01", "2026-09", 9),
        ("2026", "2026-01", "2026-12", 12),
    ],
)
def test_periods_parse_to_month_ranges(text: str, first: str, last: str, n: int) -> None:
    p = parse_period(text)
    assert (p.first, p.last, len(p.months)) == (first, last, n)
    assert p.start == date(int(first[:4]), int(first[5:]), 1)
    assert p.end == month_end(last)


@pytest.mark.parametrize("bad", ["2026-13", "2026-Q5", "2026-H3", "26", "2026-8M", "", "2026-1"])
def test_bad_periods_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest, match="bad period"):
        parse_period(bad)


def test_month_end_handles_leap_years() -> None:
    assert month_end("2028-02") == date(2028, 2, 29)
    assert month_end("2026-12") == date(2026, 12, 31)


@given(st.integers(2000, 2100), st.integers(1, 12), st.integers(-40, 40))
def test_add_months_round_trips(y: int, m: int, k: int) -> None:
    month = f"{y:04d}-{m:02d}"
    assert add_months(add_months(month, k), -k) == month


def test_deadline_counts_weekdays_after_the_period() -> None:
    # October 2026 ends on a Saturday: Mon 2 .. Fri 6 November are the 5 working days
    d = working_day_deadline(date(2026, 10, 31), 5)
    assert d == datetime(2026, 11, 7, tzinfo=VN_TZ)
    assert datetime(2026, 11, 6, 23, 59, tzinfo=VN_TZ) < d
    # 15 working days: three weeks
    assert working_day_deadline(date(2026, 10, 31), 15) == datetime(2026, 11, 21, tzinfo=VN_TZ)


def test_holidays_push_the_deadline() -> None:
    base = working_day_deadline(date(2026, 8, 31), 5)
    with_holiday = working_day_deadline(date(2026, 8, 31), 5, {date(2026, 9, 2)})
    assert (with_holiday - base).days == 1


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 30))
def test_deadline_is_after_n_weekdays(end: date, n: int) -> None:
    d = working_day_deadline(end, n).date()
    days = [date.fromordinal(end.toordinal() + i) for i in range(1, (d - end).days)]
    assert sum(1 for x in days if x.weekday() < 5) == n
    assert days[-1].weekday() < 5  # the deadline day itself is a working day


def test_vietnams_calendar_knows_tet_and_the_working_saturdays() -> None:
    from sinks.reports.calendar import WorkingCalendar
    from sinks.reports.config import ReportConfig

    vn = WorkingCalendar()
    # Tết 2026: Monday 16 to Friday 20 February are days off
    assert not any(vn.is_working_day(date(2026, 2, d)) for d in range(16, 21))
    # 2025: Saturday 26 April was worked in exchange for Friday 2 May
    assert vn.is_working_day(date(2025, 4, 26)) and not vn.is_working_day(date(2025, 5, 2))
    # January 2026 ends on a Saturday: the 5th working day is Friday 6 February; a period
    # ending Friday 24 January 2025 runs over Tết 2025 (27 January to 1 February are off):
    # Monday 3 to Friday 7 February, where plain weekdays would end on 31 January
    assert vn.deadline(date(2026, 1, 31), 5) == datetime(2026, 2, 7, tzinfo=VN_TZ)
    assert vn.deadline(date(2025, 1, 24), 5) == datetime(2025, 2, 8, tzinfo=VN_TZ)
    plain = WorkingCalendar(public_holidays=False)
    assert plain.deadline(date(2025, 1, 24), 5) == datetime(2025, 2, 1, tzinfo=VN_TZ)
    extra = WorkingCalendar({date(2026, 11, 2)})
    assert extra.deadline(date(2026, 10, 31), 5) == datetime(2026, 11, 10, tzinfo=VN_TZ)
    cfg = ReportConfig()
    assert cfg.deadline("station", "2026-10") == datetime(2026, 11, 7, tzinfo=VN_TZ)
    assert cfg.regime.deadline_working_days == {"station": 5, "district": 15, "province": 25}
