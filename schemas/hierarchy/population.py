"""Population denominators: per-station rows, target groups, the growth between census
counts and the year asked for, and the deterministic apportionment used to build them.

Only stations carry population rows; every other unit's population at a date is the sum over
the stations under it at that date, so children always add up to their parent.

A row holds counts *as of* its ``reference_date`` (the 2019 census for the default data:
1 April 2019). Asked for a date in year Y, a station's count is the row's count scaled by
:class:`Growth` to 1 July of Y (mid-year, the usual denominator of an annual rate) and
rounded: an estimate. A row without ``reference_date`` is taken as it is (a province's
official table for the period it covers).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from schemas.hierarchy.model import covers

__all__ = [
    "GROUPS",
    "Growth",
    "PopulationGroup",
    "PopulationRow",
    "PopulationTotal",
    "apportion",
    "hash_weight",
    "mid_year",
]

#: ``total``: everyone; ``under_1``: surviving infants (the target group of the infant
#: immunisation schedule); ``women_15_49``: women of reproductive age.
PopulationGroup = Literal["total", "under_1", "women_15_49"]
GROUPS: Final[tuple[PopulationGroup, ...]] = ("total", "under_1", "women_15_49")


@dataclass(frozen=True, slots=True)
class PopulationRow:
    """``population`` people live in station ``code``'s commune over ``[valid_from, valid_to)``
    (counted as of ``reference_date``), of whom ``under_1`` infants and ``women_15_49``
    women aged 15 to 49 (``None``: not known)."""

    code: str
    population: int
    valid_from: date | None = None
    valid_to: date | None = None
    under_1: int | None = None
    women_15_49: int | None = None
    reference_date: date | None = None

    def valid_at(self, day: date) -> bool:
        return covers(self.valid_from, self.valid_to, day)

    def count(self, group: PopulationGroup) -> int | None:
        if group == "total":
            return self.population
        return self.under_1 if group == "under_1" else self.women_15_49


@dataclass(frozen=True, slots=True)
class PopulationTotal:
    """A national population total on ``day`` (a census or an official survey)."""

    day: date
    population: int
    source: str = ""


def mid_year(year: int) -> date:
    """1 July of ``year``: the reference date of a year's population denominators."""
    return date(year, 7, 1)


class Growth:
    """The national population between (and beyond) official totals: exponential between
    the two anchors around a date, extrapolated with the nearest pair outside them."""

    def __init__(self, anchors: Sequence[PopulationTotal]) -> None:
        self.anchors = tuple(sorted(anchors, key=lambda a: a.day))
        if not self.anchors or any(a.population <= 0 for a in self.anchors):
            raise ValueError("growth needs at least one positive national total")
        if len({a.day for a in self.anchors}) != len(self.anchors):
            raise ValueError("two national totals on the same day")

    def total(self, day: date) -> float:
        """The national population on ``day`` (an anchor's own value on its day)."""
        a = self.anchors
        if len(a) == 1:
            return float(a[0].population)
        i = next((k for k in range(1, len(a) - 1) if day < a[k].day), len(a) - 1)
        lo, hi = a[i - 1], a[i]
        rate = math.log(hi.population / lo.population) / (hi.day - lo.day).days
        return lo.population * math.exp(rate * (day - lo.day).days)

    def factor(self, reference: date, day: date) -> float:
        """How much the population grew from ``reference`` to ``day``."""
        return self.total(day) / self.total(reference)


def hash_weight(code: str, salt: str = "tuyen-population-v1") -> int:
    """A stable integer weight in ``[500, 1500)`` from the code (sha256), for apportionment.

    It spreads a province total unevenly but reproducibly over its communes (ratio ≤ 3:1);
    it is a stand-in for real commune populations, which the public sources do not give.
    """
    digest = hashlib.sha256(f"{salt}:{code}".encode()).digest()
    return 500 + int.from_bytes(digest[:8], "big") % 1000


def apportion(total: int, weights: Mapping[str, int] | Sequence[tuple[str, int]]) -> dict[str, int]:
    """Split ``total`` over keys in proportion to integer ``weights`` (largest remainder).

    Exact integer arithmetic: the parts sum to ``total``; each part is its quota rounded down
    or up; leftover units go to the largest remainders, ties broken by key (deterministic).
    """
    items = sorted(weights.items() if isinstance(weights, Mapping) else weights)
    if total < 0:
        raise ValueError("total must be >= 0")
    if not items:
        if total:
            raise ValueError("cannot apportion a non-zero total over no keys")
        return {}
    if any(w < 0 for _, w in items):
        raise ValueError("weights must be >= 0")
    wsum = sum(w for _, w in items)
    if wsum == 0:
        items = [(k, 1) for k, _ in items]
        wsum = len(items)
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for key, w in items:
        q, r = divmod(total * w, wsum)
        parts[key] = q
        remainders.append((-r, key))
    leftover = total - sum(parts.values())
    for _, key in sorted(remainders)[:leftover]:
        parts[key] += 1
    return parts
