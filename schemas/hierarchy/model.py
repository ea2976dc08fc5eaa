"""Value types of the hierarchy: tiers, effective-dated unit versions and parent links.

Intervals are half-open ``[valid_from, valid_to)`` on calendar dates in Vietnam local time;
``None`` means unbounded on that side. Timestamps are turned into dates by :func:`as_local_date`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum

__all__ = [
    "VN_TZ",
    "Link",
    "Placement",
    "Tier",
    "Unit",
    "UnitRef",
    "as_local_date",
    "covers",
]

#: Vietnam has used UTC+07:00 without daylight saving since 1975.
VN_TZ = timezone(timedelta(hours=7), "ICT")


class Tier(IntEnum):
    """Tiers from the top; ``DISTRICT`` holds districts before 2025-07-01, regional centres
    (khu vực) after."""

    NATIONAL = 0
    PROVINCE = 1
    DISTRICT = 2
    STATION = 3

    @classmethod
    def parse(cls, value: str | Tier) -> Tier:
        """``Tier.parse("station")`` → ``Tier.STATION`` (case-insensitive names)."""
        if isinstance(value, Tier):
            return value
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown tier {value!r}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def as_local_date(at: date | datetime) -> date:
    """The calendar date in Vietnam of ``at``.

    Aware datetimes are converted to UTC+07:00 first; naive datetimes are read as local time.
    """
    if isinstance(at, datetime):
        if at.tzinfo is not None and at.utcoffset() is not None:
            at = at.astimezone(VN_TZ)
        return at.date()
    return at


def covers(valid_from: date | None, valid_to: date | None, day: date) -> bool:
    """True when ``day`` lies in ``[valid_from, valid_to)`` (``None`` = unbounded)."""
    return (valid_from is None or valid_from <= day) and (valid_to is None or day < valid_to)


@dataclass(frozen=True, slots=True)
class Unit:
    """One version of a unit: its name and kind over ``[valid_from, valid_to)``.

    A code keeps its tier for life; several versions with disjoint intervals record renames
    (a commune whose code survives the 2025 reorganisation under a new name). ``successor``
    names the unit that takes over when this version ends without a next version (a merger).
    """

    tier: Tier
    code: str
    name: str
    kind: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    successor: str | None = None

    def valid_at(self, day: date) -> bool:
        return covers(self.valid_from, self.valid_to, day)


@dataclass(frozen=True, slots=True)
class Link:
    """``child`` sits under ``parent`` over ``[valid_from, valid_to)``."""

    child: str
    parent: str
    valid_from: date | None = None
    valid_to: date | None = None

    def valid_at(self, day: date) -> bool:
        return covers(self.valid_from, self.valid_to, day)


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A unit as seen at one date: tier, code, name and kind."""

    tier: Tier
    code: str
    name: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a station sits at date ``at``: its chain up to the national level."""

    at: date
    station: UnitRef
    district: UnitRef
    province: UnitRef
    national: UnitRef

    @property
    def chain(self) -> tuple[UnitRef, UnitRef, UnitRef, UnitRef]:
        """(station, district, province, national)."""
        return (self.station, self.district, self.province, self.national)

    def codes(self) -> dict[str, str]:
        """``{"station": …, "district": …, "province": …, "national": …}`` for enrichment."""
        return {ref.tier.label: ref.code for ref in self.chain}
