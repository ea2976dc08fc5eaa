"""Reporting completeness and on-time rates from arrivals and the hierarchy. Pure.

The reporting unit is a station-month: a station is expected to report for every month
whose last day it is open (hierarchy), and has reported when the store holds data for that
month from it. A station-month is on time when its latest arrival came before the station
deadline (5 working days after the month). A district-month (province-month) is on time
when data from its stations exists and all of it arrived before the district (province)
deadline: 15 (25) working days after the month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.reports.config import ReportConfig
from sinks.reports.periods import Period, month_end, working_day_deadline
from sinks.reports.scope import Mapper, child_of

__all__ = ["completeness_parts"]

Parts = dict[tuple[str, str], tuple[int, int | None]]


def _stations(h: Hierarchy, tier: Tier, unit: str, mode: str, at: date) -> Iterable[str]:
    if mode == "as-recorded" and tier is not Tier.NATIONAL:
        return h.stations_in(unit, at) if h.exists(unit, at) else ()
    return (r.code for r in h.units(Tier.STATION, at))


def completeness_parts(
    h: Hierarchy,
    tier: Tier,
    unit: str,
    period: Period,
    mapper: Mapper,
    arrivals: Sequence[tuple[str, str, str | None, str | None, str | None, float | None]],
    config: ReportConfig,
    mode: str,
) -> Parts:
    """``arrivals``: (recorded station, month, child, district, province, last arrival as
    epoch seconds) for the in-scope data of the period. Returns (indicator, child) → parts."""
    days = config.deadline_working_days
    deadline = {
        (t, m): working_day_deadline(month_end(m), days[t], config.holidays).timestamp()
        for m in period.months
        for t in ("station", "district", "province")
    }
    # expected station-months: (station, month) -> (child, district, province) as mapped
    expected: dict[tuple[str, str], tuple[str, str, str]] = {}
    for m in period.months:
        at = month_end(m)
        for s in _stations(h, tier, unit, mode, at):
            try:
                pl = h.lookup(s, at)
            except HierarchyError:
                continue
            mapped = mapper(s, pl.district.code, pl.province.code, m)
            child = child_of(tier, unit, mapped)
            if child is not None:
                expected[(s, m)] = (child, mapped[1], mapped[2])
    last: dict[tuple[str, str], float] = {}
    for s, m, _child, _d, _p, epoch in arrivals:
        if epoch is None or (s, m) not in expected:
            continue
        last[(s, m)] = max(epoch, last.get((s, m), float("-inf")))

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    # grouped units (tier, code, month) -> [child, latest arrival (-inf: none)]
    groups: dict[tuple[str, str, str], tuple[str, float]] = {}
    for (s, m), (child, d, p) in expected.items():
        got = last.get((s, m))
        counts[("reporting_completeness", child)][1] += 1
        counts[("ontime_station", child)][1] += 1
        if got is not None:
            counts[("reporting_completeness", child)][0] += 1
            if got < deadline[("station", m)]:
                counts[("ontime_station", child)][0] += 1
        for t, code in (("district", d), ("province", p)):
            if Tier.parse(t) <= tier:
                continue  # counted units must lie below the report's unit
            # the report unit's child holds the whole district/province: same child
            _c, latest = groups.get((t, code, m), (child, float("-inf")))
            groups[(t, code, m)] = (child, max(latest, got if got is not None else latest))
    for (t, _code, m), (child, latest) in groups.items():
        c = counts[(f"ontime_{t}", child)]
        c[1] += 1
        if latest > float("-inf") and latest < deadline[(t, m)]:
            c[0] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
