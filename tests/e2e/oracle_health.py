"""The oracle's health indicators: each definition of docs/reports.md recomputed in plain
Python from the records' states (no SQL, nothing from ``sinks``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import codes

__all__ = ["Live", "health_contributions", "month_index"]

Contribution = tuple[Any, str, int, int | None]  # (placement key, indicator, num, den)


@dataclass(frozen=True, slots=True)
class Live:
    """A record's state as the oracle counts it (latest, or as submitted)."""

    record_type: str
    record_id: str
    station: str
    event_time: datetime
    month: str  # service month
    data: Mapping[str, Any]


def month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _mi(text: str | None) -> int | None:
    return month_index(text[:7]) if text else None


def _controlled(cond: str, m: Mapping[str, Any] | None) -> bool:
    m = m or {}
    if cond == "hypertension":
        bp = m.get("blood_pressure")
        sys_max, dia_max = codes.BP_CONTROLLED_BELOW
        if not bp:
            return False
        return bool(bp["systolic_mmhg"] < sys_max and bp["diastolic_mmhg"] < dia_max)
    fbg, a1c = m.get("fasting_glucose_mmol_l"), m.get("hba1c_percent")
    return (fbg is not None and fbg < codes.FASTING_GLUCOSE_CONTROLLED_BELOW) or (
        a1c is not None and a1c < codes.HBA1C_CONTROLLED_BELOW
    )


def health_contributions(
    live: Mapping[str, Sequence[Live]], month: str, at: Callable[[Live], Any]
) -> Iterable[Contribution]:
    """Every health indicator's contributions for one report ``month``; ``at(record)`` is
    the placement the record counts under."""
    li = month_index(month)
    dead = {r.data["health_id"] for r in live["death"] if month_index(r.month) <= li}
    yield from _persons(live, li, dead, at)
    for r in live["encounter"]:
        if r.month == month and r.data.get("encounter_type", "outpatient") == "outpatient":
            yield at(r), "outpatient_visits_per_capita", 1, None
    yield from _immunisation(live, li, at)
    yield from _register(live, month, li, dead, at)
    yield from _births(live, month, li, at)
    for r in live["death"]:
        infant = r.data.get("age_days") is not None or r.data.get("age_years") == 0
        if r.month == month and infant:
            yield at(r), "infant_mortality", 1, 0
    for r in live["disease_case"]:
        if r.month == month and r.data["classification"] in codes.INCIDENT_CLASSIFICATIONS:
            yield at(r), "incidence_all", 1, None
            yield at(r), f"incidence_{r.data['disease'].lower()}", 1, None


def _persons(
    live: Mapping[str, Sequence[Live]], li: int, dead: set[str], at: Callable[[Live], Any]
) -> Iterable[Contribution]:
    for r in live["person"]:
        if month_index(r.month) <= li and r.data["health_id"] not in dead:
            yield at(r), "health_record_coverage", 1, None


def _birth_month(data: Mapping[str, Any]) -> int | None:
    return _mi(data.get("birth_date") or data.get("birth_month"))


def _immunisation(
    live: Mapping[str, Sequence[Live]], li: int, at: Callable[[Live], Any]
) -> Iterable[Contribution]:
    doses: dict[str, list[Live]] = defaultdict(list)
    for d in live["immunization"]:
        doses[d.data["health_id"]].append(d)
    for p in live["person"]:
        bm = _birth_month(p.data)
        if bm is None or not li - 11 <= bm <= li:
            continue
        given = doses.get(p.data["health_id"], [])
        met = []
        for vaccine, need in codes.FULLY_IMMUNISED_UNDER_1.items():
            months = [
                month_index(d.month)
                for d in given
                if d.data["vaccine"] == vaccine and d.data["dose_number"] >= need
            ]
            met.append(min(months) if months else None)
        if all(m is not None for m in met):
            done = max(m for m in met if m is not None)
            if done == li and done <= bm + 11:
                yield at(p), "fully_immunised_under_1", 1, None
        mcv = [
            month_index(d.month)
            for d in given
            if d.data["vaccine"] in codes.MEASLES_CONTAINING and d.data["dose_number"] == 1
        ]
        if mcv and min(mcv) == li and min(mcv) <= bm + 11:
            yield at(p), "measles_coverage", 1, None


def _register(
    live: Mapping[str, Sequence[Live]],
    month: str,
    li: int,
    dead: set[str],
    at: Callable[[Live], Any],
) -> Iterable[Contribution]:
    last_visit: dict[tuple[str, str], tuple[Any, ...]] = {}
    for v in live["chronic_followup"]:
        vi = month_index(v.month)
        if not li - 11 <= vi <= li:
            continue
        key = (v.data["health_id"], v.data["condition"])
        rank = (v.month, v.data["visit_date"], v.event_time, v.record_id)
        cur = last_visit.get(key)
        if cur is None or rank > cur[0]:
            last_visit[key] = (
                rank,
                vi,
                _controlled(v.data["condition"], v.data.get("measurements")),
            )
    for e in live["chronic_enrolment"]:
        cond = e.data["condition"]
        ei = month_index(e.month)
        if e.month == month:
            yield at(e), f"{cond}_new_registrations", 1, None
        exit_i = _mi(e.data.get("exit_date"))
        if ei > li or (exit_i is not None and exit_i <= li) or e.data["health_id"] in dead:
            continue
        treat = _mi(e.data.get("treatment_start_date"))
        seen = last_visit.get((e.data["health_id"], cond))
        where = at(e)
        yield where, f"{cond}_registered", 1, None
        yield where, f"{cond}_on_treatment", int(treat is not None and treat <= li), 1
        yield where, f"{cond}_lost_to_follow_up", int(seen is None and ei < li - 11), 1
        if ei <= li - 3:
            recent = seen is not None and seen[1] >= li - 2
            yield where, f"{cond}_followed_up", int(recent), 1
            yield where, f"{cond}_controlled", int(recent and bool(seen and seen[2])), 1


def _births(
    live: Mapping[str, Sequence[Live]], month: str, li: int, at: Callable[[Live], Any]
) -> Iterable[Contribution]:
    deliveries: dict[tuple[Any, str], list[Live]] = defaultdict(list)
    for b in live["birth"]:
        if b.month != month:
            continue
        deliveries[(at(b), b.data["mother_health_id"])].append(b)
        live_birth = bool(b.data["live_birth"])
        weighed = b.data.get("weight_grams") is not None
        low = weighed and b.data["weight_grams"] < codes.LOW_BIRTH_WEIGHT_BELOW_G
        yield at(b), "low_birth_weight", int(live_birth and low), int(live_birth and weighed)
        yield at(b), "infant_mortality", 0, int(live_birth)
    visits: dict[str, list[int]] = defaultdict(list)
    for a in live["antenatal_visit"]:
        visits[a.data["health_id"]].append(month_index(a.month))
    for (where, mother), babies in deliveries.items():
        yield (
            where,
            "facility_deliveries",
            int(any(b.data["place"] == "facility" for b in babies)),
            1,
        )
        skilled = any(b.data["attendant"] in codes.SKILLED_BIRTH_ATTENDANTS for b in babies)
        yield where, "skilled_birth_attendance", int(skilled), 1
        if any(b.data["live_birth"] for b in babies):
            n = sum(1 for vi in visits.get(mother, ()) if li - 9 <= vi <= li)
            yield where, "anc4", int(n >= 4), 1
