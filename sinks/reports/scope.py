"""Where a recorded placement lands in a report: as recorded, or restated into the current
structure, and which child unit of the report's unit it counts for. Pure (hierarchy only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from schemas.hierarchy import Hierarchy, HierarchyError, Tier, restate_province
from sinks.reports.periods import month_end, month_start

__all__ = ["Mapped", "Mapper", "child_of", "make_mapper", "reference_date", "unit_name"]

#: (station, district, province) codes in the report's structure
Mapped = tuple[str, str, str]
Mapper = Callable[[str, str, str, str], Mapped]

MODES = ("as-recorded", "current")


def _as_recorded(s: str, d: str, p: str, month: str) -> Mapped:
    return (s, d, p)


def make_mapper(h: Hierarchy, mode: str, target: date) -> Mapper:
    """``mapper(station, district, province, month) -> (station, district, province)``.

    ``current``: the station as recorded in ``month`` is restated (``Hierarchy.restate``)
    into the structure at ``target``; a commune that no longer exists lands on its regional
    centre, which then stands for both the station and the district. Codes unknown to the
    hierarchy fall back to ``restate_province`` for the province and are kept otherwise.
    """
    if mode == "as-recorded":
        return _as_recorded
    cache: dict[tuple[str, str, str, str], Mapped] = {}

    def mapper(s: str, d: str, p: str, month: str) -> Mapped:
        key = (s, d, p, month)
        hit = cache.get(key)
        if hit is not None:
            return hit
        out: Mapped | None = None
        for at in (month_start(month), month_end(month)):
            if at > target:
                at = target
            try:
                r = h.restate(s, at, target)
                if r.tier is Tier.STATION:
                    pl = h.lookup(r.code, target)
                    out = (r.code, pl.district.code, pl.province.code)
                else:
                    up = h.parent(r.code, target)
                    out = (r.code, r.code, up.code if up else p)
                break
            except (HierarchyError, ValueError):
                continue
        if out is None:
            try:
                p2 = restate_province(p)
            except HierarchyError:
                p2 = p
            try:
                d2 = h.restate(d, min(month_start(month), target), target).code
            except (HierarchyError, ValueError):
                d2 = d
            out = (s, d2, p2)
        cache[key] = out
        return out

    return mapper


def child_of(tier: Tier, unit: str, mapped: Mapped) -> str | None:
    """The child of ``unit`` (at ``tier``) a mapped placement counts for; ``None`` when the
    placement is outside the unit."""
    s, d, p = mapped
    if tier is Tier.NATIONAL:
        return p
    if tier is Tier.PROVINCE:
        return d if p == unit else None
    if tier is Tier.DISTRICT:
        return s if d == unit else None
    raise ValueError(f"no report at tier {tier.label}")


def reference_date(h: Hierarchy, unit: str, first: date, last: date, mode: str) -> date | None:
    """The date whose structure the report uses: the period's last day (as recorded; the
    unit's last day inside the period if it closed earlier), or the later of that and the
    current structure's first day (current). ``None`` when the unit does not exist then."""
    if mode == "current":
        at = max(last, h.current_date)
        return at if h.exists(unit, at) else None
    if h.exists(unit, last):
        return last
    best: date | None = None
    for v in h.versions(unit):
        if v.valid_to is None:
            continue
        end = date.fromordinal(v.valid_to.toordinal() - 1)
        if first <= end <= last and (best is None or end > best):
            best = end
    return best


def unit_name(h: Hierarchy, code: str, at: date) -> str:
    try:
        return h.unit(code, at).name
    except HierarchyError:
        versions = h.versions(code)
        return versions[-1].name if versions else code
