"""``format_time`` (the wire and signed form of a time) is exactly ``strftime``'s text, for
any aware time in any offset (it is built another way for speed: issue 17); ``today_vn``,
remembered for the last ``now``, is the date in Vietnam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import format_time
from schemas.fields import today_vn

_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=_OFFSETS)
)
def test_format_time_is_strftime(t: datetime) -> None:
    assert format_time(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_format_time_examples() -> None:
    assert format_time(datetime(2025, 1, 31, 8, tzinfo=UTC)) == "2025-01-31T08:00:00.000000Z"
    plus7 = timezone(timedelta(hours=7))
    assert format_time(datetime(2025, 1, 1, 6, 59, 59, 1, plus7)) == "2024-12-31T23:59:59.000001Z"


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=_OFFSETS),
    _OFFSETS,
)
def test_a_remembered_time_is_the_same_instants_text(t: datetime, tz: timezone) -> None:
    """A second call (remembered) on the same instant, in any offset, gives strftime's text."""
    expected = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_time(t) == expected
    assert format_time(t) == expected
    assert format_time(t.astimezone(tz)) == expected


_NOWS = st.one_of(
    st.datetimes(min_value=datetime(2, 1, 2), max_value=datetime(9998, 12, 30), timezones=_OFFSETS),
    st.datetimes(min_value=datetime(2, 1, 2), max_value=datetime(9998, 12, 30)),  # naive: UTC
)


@given(st.lists(st.tuples(_NOWS, st.booleans()), max_size=8))
def test_today_vn_remembered_is_the_date_in_vietnam(calls: list[tuple[datetime, bool]]) -> None:
    """``today_vn`` remembers the last ``now`` (the same object): any sequence of calls, each
    on a new time or again on the one before (``again``), gives that instant's date in
    Vietnam (UTC+7; a naive time taken as UTC)."""
    last: datetime | None = None
    for t, again in calls:
        now = last if again and last is not None else t
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        assert today_vn(now) == aware.astimezone(timezone(timedelta(hours=7))).date()
        last = now
