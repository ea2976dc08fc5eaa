"""Consistency checks run when a hierarchy is loaded; they raise InvalidReferenceData.

The checks: a code keeps one tier and its versions do not overlap; every non-national unit
has exactly one parent at every date it exists and none outside; a parent is one tier up and
exists over the whole link; national units have no parent; successors exist when the
predecessor ends; population rows belong to stations, lie within their lifetime and do not
overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from itertools import pairwise

from schemas.hierarchy.exceptions import InvalidReferenceData
from schemas.hierarchy.model import Link, Tier, Unit
from schemas.hierarchy.population import PopulationRow

__all__ = ["Interval", "merge", "validate"]

Interval = tuple[date, date]  # [lo, hi) with date.min / date.max standing for unbounded


def _iv(valid_from: date | None, valid_to: date | None) -> Interval:
    return (valid_from or date.min, valid_to or date.max)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of half-open intervals, sorted, adjacent ones joined."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _overlaps(intervals: Sequence[Interval]) -> bool:
    if len(intervals) < 2:
        return False
    ordered = sorted(intervals)
    return any(a[1] > b[0] for a, b in pairwise(ordered))


def _inside(inner: Interval, outer: list[Interval]) -> bool:
    return any(lo <= inner[0] and inner[1] <= hi for lo, hi in outer)


def validate(
    versions: Mapping[str, Sequence[Unit]],
    parents: Mapping[str, Sequence[Link]],
    population: Mapping[str, Sequence[PopulationRow]],
) -> None:
    lifetimes: dict[str, list[Interval]] = {}
    for code, vs in versions.items():
        if len({v.tier for v in vs}) != 1:
            raise InvalidReferenceData(f"unit {code} changes tier", code=code)
        ivs = [_iv(v.valid_from, v.valid_to) for v in vs]
        if any(lo >= hi for lo, hi in ivs):
            raise InvalidReferenceData(f"unit {code} has an empty interval", code=code)
        if _overlaps(ivs):
            raise InvalidReferenceData(f"unit {code} has overlapping versions", code=code)
        lifetimes[code] = merge(ivs)

    for child in parents:
        if child not in versions:
            raise InvalidReferenceData(f"link from unknown unit {child}", code=child)

    for code, vs in versions.items():
        tier = vs[0].tier
        links = parents.get(code, ())
        if tier is Tier.NATIONAL:
            if links:
                raise InvalidReferenceData(f"national unit {code} has a parent", code=code)
            continue
        ivs = [_iv(x.valid_from, x.valid_to) for x in links]
        if any(lo >= hi for lo, hi in ivs) or _overlaps(ivs):
            raise InvalidReferenceData(f"unit {code} has overlapping parent links", code=code)
        if merge(ivs) != lifetimes[code]:
            raise InvalidReferenceData(
                f"unit {code}: parent links do not cover exactly its lifetime", code=code
            )
        for link in links:
            pvs = versions.get(link.parent)
            if not pvs:
                raise InvalidReferenceData(f"unit {code}: unknown parent {link.parent}", code=code)
            if pvs[0].tier != Tier(tier - 1):
                raise InvalidReferenceData(
                    f"unit {code} ({tier.label}) under {link.parent} ({pvs[0].tier.label})",
                    code=code,
                )
            if not _inside(_iv(link.valid_from, link.valid_to), lifetimes[link.parent]):
                raise InvalidReferenceData(
                    f"unit {code}: parent {link.parent} does not exist over the link", code=code
                )

    for code, vs in versions.items():
        for v in vs:
            if v.successor is None:
                continue
            end = v.valid_to
            successors = versions.get(v.successor, ())
            if end is None or not any(s.valid_at(end) for s in successors):
                raise InvalidReferenceData(
                    f"unit {code}: successor {v.successor} does not exist when it ends", code=code
                )

    for code, rows in population.items():
        station = versions.get(code)
        if not station or station[0].tier is not Tier.STATION:
            raise InvalidReferenceData(f"population for {code}, not a station", code=code)
        ivs = [_iv(r.valid_from, r.valid_to) for r in rows]
        if _overlaps(ivs) or not all(_inside(iv, lifetimes[code]) for iv in ivs):
            raise InvalidReferenceData(
                f"station {code}: population rows overlap or exceed its lifetime", code=code
            )
