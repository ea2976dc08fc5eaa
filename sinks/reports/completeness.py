"""Reporting completeness and on-time rates from submissions, approvals, locks and the
hierarchy. Pure.

The reporting unit is a station-month: a station is expected to report for every month whose
last day it is open (hierarchy), and has reported when its head's signed submission for that
month (a live ``report_submission`` record) is in the store. A station-month is on time when
its first submission reached the broker before the station deadline; it is approved when the
unit above approved it (sign-off ledger) and did not send it back since. A district-month is
on time when every expected station-month of the district was approved before the district
deadline; a province-month when the province locked it before the province deadline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.reports.config import ReportConfig
from sinks.reports.periods import Period, month_end
from sinks.reports.scope import Mapper, child_of

__all__ = ["Submitted", "completeness_parts"]

Parts = dict[tuple[str, str], tuple[int, int | None]]
#: (recorded station, month, child, mapped district, mapped province, first receive epoch)
Submitted = tuple[str, str, str | None, str | None, str | None, float | None]


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
    submitted: Sequence[Submitted],
    config: ReportConfig,
    mode: str,
    *,
    approvals: Mapping[tuple[str, str], float] | None = None,
    locks: Mapping[tuple[str, str], float] | None = None,
) -> Parts:
    """(indicator, child) → parts. ``approvals``: (station, month) → when the effective
    approval reached the broker (epoch seconds); ``locks``: (province, month) → when the
    province's lock did."""
    approvals = approvals or {}
    locks = locks or {}
    deadline = {
        (t, m): config.deadline(t, m).timestamp()
        for m in period.months
        for t in ("station", "district", "province")
    }
    # expected station-months: (station, month) -> (child, district, province) as mapped,
    # and the province as recorded (whose lock counts)
    expected: dict[tuple[str, str], tuple[str, str, str, str]] = {}
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
                expected[(s, m)] = (child, mapped[1], mapped[2], pl.province.code)
    first: dict[tuple[str, str], float] = {}
    for s, m, _child, _d, _p, epoch in submitted:
        if epoch is not None and (s, m) in expected:
            first[(s, m)] = min(epoch, first.get((s, m), float("inf")))

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    # district-months: (district, month) -> (child, every station approved in time)
    districts: dict[tuple[str, str], tuple[str, bool]] = {}
    provinces: dict[tuple[str, str], tuple[str, str]] = {}  # mapped -> (child, recorded)
    for (s, m), (child, d, p, recorded_p) in expected.items():
        got = first.get((s, m))
        approved = approvals.get((s, m)) if got is not None else None
        for ind, hit in (
            ("reporting_completeness", got is not None),
            ("ontime_station", got is not None and got < deadline[("station", m)]),
            ("reports_approved", approved is not None),
        ):
            c = counts[(ind, child)]
            c[0] += int(hit)
            c[1] += 1
        if tier < Tier.DISTRICT:
            in_time = approved is not None and approved < deadline[("district", m)]
            _c, ok = districts.get((d, m), (child, True))
            districts[(d, m)] = (child, ok and in_time)
        if tier < Tier.PROVINCE:
            provinces.setdefault((p, m), (child, recorded_p))
    for (_d, _m), (child, ok) in districts.items():
        c = counts[("ontime_district", child)]
        c[0] += int(ok)
        c[1] += 1
    for (_p, m), (child, recorded_p) in provinces.items():
        locked = locks.get((recorded_p, m))
        c = counts[("ontime_province", child)]
        c[0] += int(locked is not None and locked < deadline[("province", m)])
        c[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
