"""``format_time`` (the wire and signed form of a time) is exactly ``strftime``'s text, for
any aware time in any offset (it is built another way for speed: issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import format_time

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
