"""The report oracle: every indicator of docs/reports.md recomputed in plain Python.

Independent of ``sinks``: nothing here reads a store or runs SQL. The inputs are the
simulator's ground truth (``Truth.records``: each record's final state after corrections and
deletions), the list of accepted arrivals (for completeness and timeliness, which depend on
*every* change and on when it reached Kafka) and the hierarchy (placement at event time,
children, population denominators, stations expected to report).

Each indicator is computed as contributions ``(chain, indicator, numerator, denominator)``
where ``chain`` is the codes of the national, province, district and station units the row
counts under; a unit's parts are the sums over contributions whose chain holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas import codes
from schemas.hierarchy import VN_TZ, Hierarchy, Tier

__all__ = [
    "Arrival",
    "Expected",
    "Oracle",
    "deadline_end",
    "month_end",
    "vn_month",
]

Chain = tuple[str, str, str, str]  # national, province, district, station
Parts = tuple[int, int | None]  # numerator, denominator (None: a count)

MULTIPLIER: dict[str, int] = {
    "health_record_coverage": 100,
    "outpatient_visits_per_capita": 1,
    "fully_immunised_under_1": 100,
    "measles_coverage": 100,
    "hypertension_managed": 1,
    "hypertension_controlled": 100,
    "diabetes_managed": 1,
    "diabetes_controlled": 100,
    "anc4": 100,
    "facility_births": 100,
    "infant_mortality": 1000,
    "incidence_all": 100_000,
    "doctors_per_10000": 10_000,
    "stations_with_doctor": 100,
    "stations_with_midwife": 100,
    "beds_per_10000": 10_000,
    "equipment_working": 100,
    "stations_with_stockout": 100,
    "reporting_completeness": 100,
    "ontime_station": 100,
    "ontime_district": 100,
    "ontime_province": 100,
}
for _disease in codes.NOTIFIABLE_DISEASES:
    MULTIPLIER[f"incidence_{_disease.lower()}"] = 100_000

POPULATION_DENOMINATOR = frozenset(
    {
        "health_record_coverage",
        "outpatient_visits_per_capita",
        "incidence_all",
        "doctors_per_10000",
        "beds_per_10000",
        *(f"incidence_{d.lower()}" for d in codes.NOTIFIABLE_DISEASES),
    }
)
COUNTS = frozenset({"hypertension_managed", "diabetes_managed"})

HEALTH = (
    "health_record_coverage",
    "outpatient_visits_per_capita",
    "fully_immunised_under_1",
    "measles_coverage",
    "hypertension_managed",
    "hypertension_controlled",
    "diabetes_managed",
    "diabetes_controlled",
    "anc4",
    "facility_births",
    "infant_mortality",
    "incidence_all",
    *(f"incidence_{d.lower()}" for d in codes.NOTIFIABLE_DISEASES),
)
RESOURCES = (
    "doctors_per_10000",
    "stations_with_doctor",
    "stations_with_midwife",
    "beds_per_10000",
    "equipment_working",
    "stations_with_stockout",
)
COMPLETENESS = ("reporting_completeness", "ontime_station", "ontime_district", "ontime_province")
KIND_INDICATORS: dict[str, tuple[str, ...]] = {
    "health": HEALTH,
    "resources": RESOURCES,
    "completeness": COMPLETENESS,
}


# --- dates ---------------------------------------------------------------------------------
def vn_month(t: datetime) -> str:
    """``YYYY-MM`` of ``t`` in Vietnam time."""
    local = t.astimezone(VN_TZ)
    return f"{local.year:04d}-{local.month:02d}"


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_end(month: str) -> date:
    y, m = int(month[:4]), int(month[5:7])
    first_next = date(y + m // 12, m % 12 + 1, 1)
    return first_next - timedelta(days=1)


def deadline_end(
    month: str, working_days: int, holidays: frozenset[date] = frozenset()
) -> datetime:
    """The instant the N-th working day (Mon-Fri, minus holidays) after ``month`` ends."""
    day, n = month_end(month), 0
    while n < working_days:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            n += 1
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=VN_TZ).astimezone(UTC)


# --- inputs --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Arrival:
    """One accepted change as it reached the raw topic (first delivery only)."""

    station: str
    event_time: datetime
    received: datetime
    record_type: str
    record_id: str
    period: str | None = None  # the ``period`` of a snapshot after-image


@dataclass(frozen=True, slots=True)
class Live:
    """A live record of the truth, flattened for the oracle."""

    record_type: str
    record_id: str
    station: str
    time: datetime
    month: str
    data: Mapping[str, Any]


@dataclass
class Expected:
    """Expected parts per (indicator, unit)."""

    parts: dict[tuple[str, str], Parts] = field(default_factory=dict)

    def get(self, indicator: str, unit: str) -> Parts:
        return self.parts[(indicator, unit)]

    def value(self, indicator: str, unit: str) -> float | None:
        num, den = self.get(indicator, unit)
        if indicator in COUNTS:
            return float(num)
        if not den:
            return None
        return MULTIPLIER[indicator] * num / den


# --- the oracle ----------------------------------------------------------------------------
class Oracle:
    """Expected report parts for one single-month period (``month``), as recorded."""

    def __init__(
        self,
        records: Mapping[tuple[str, str], Any],
        arrivals: Sequence[Arrival],
        hierarchy: Hierarchy,
        month: str,
        *,
        deadlines: Mapping[str, int] | None = None,
        holidays: frozenset[date] = frozenset(),
    ) -> None:
        self.h = hierarchy
        self.month = month
        self.ref = month_end(month)
        self.deadlines = dict(deadlines or {"station": 5, "district": 15, "province": 25})
        self.holidays = holidays
        self.arrivals = arrivals
        self._chains: dict[tuple[str, date], Chain] = {}
        self.live: dict[str, list[Live]] = defaultdict(list)
        for (rt, rid), rec in records.items():
            if rec.deleted or rec.data is None:
                continue
            self.live[rt].append(Live(rt, rid, rec.station, rec.time, vn_month(rec.time), rec.data))

    # -- placement ----------------------------------------------------------------------
    def chain(self, station: str, at: datetime | date) -> Chain:
        day = at.astimezone(VN_TZ).date() if isinstance(at, datetime) else at
        key = (station, day)
        got = self._chains.get(key)
        if got is None:
            p = self.h.lookup(station, day)
            got = (p.national.code, p.province.code, p.district.code, p.station.code)
            self._chains[key] = got
        return got

    def in_month(self, rt: str) -> list[Live]:
        return [r for r in self.live[rt] if r.month == self.month]

    # -- health -------------------------------------------------------------------------
    def _health(self) -> Iterable[tuple[Chain, str, int, int | None]]:
        last = _month_index(self.month)
        persons = {r.record_id: r for r in self.live["person"]}
        for r in self.live["person"]:
            if _month_index(r.month) <= last:
                yield self.chain(r.station, r.time), "health_record_coverage", 1, None
        for r in self.in_month("encounter"):
            if r.data.get("encounter_type") == "outpatient":
                yield self.chain(r.station, r.time), "outpatient_visits_per_capita", 1, None

        # immunisation: doses by child (any station), month of the dose = its event month
        doses: dict[str, list[Live]] = defaultdict(list)
        for r in self.live["immunization"]:
            doses[r.data["health_id"]].append(r)

        def birth_month(hid: str) -> int | None:
            p = persons.get(hid)
            bd = p.data.get("birth_date") if p is not None else None
            return _month_index(bd[:7]) if bd else None

        for p in self.live["person"]:
            bm = birth_month(p.record_id)
            if bm is None or bm + 12 != last:
                continue
            ch = self.chain(p.station, p.time)
            full = all(
                any(
                    d.data["vaccine"] == vaccine
                    and d.data["dose_number"] >= need
                    and _month_index(d.month) <= bm + 11
                    for d in doses.get(p.record_id, ())
                )
                for vaccine, need in codes.FULLY_IMMUNISED_UNDER_1.items()
            )
            yield ch, "fully_immunised_under_1", int(full), 1

        for r in self.in_month("immunization"):
            if r.data["vaccine"] in ("MEASLES", "MR") and r.data["dose_number"] == 1:
                bm = birth_month(r.data["health_id"])
                if bm is not None and bm <= last <= bm + 11:
                    yield self.chain(r.station, r.time), "measles_coverage", 1, 0
        births = self.in_month("birth")
        for r in births:
            ch = self.chain(r.station, r.time)
            live_birth = bool(r.data.get("live_birth"))
            yield ch, "measles_coverage", 0, int(live_birth)
            yield ch, "infant_mortality", 0, int(live_birth)
            yield ch, "facility_births", int(r.data.get("place") == "facility"), 1
        for r in self.in_month("death"):
            infant = r.data.get("age_days") is not None or r.data.get("age_years") == 0
            if infant:
                yield self.chain(r.station, r.time), "infant_mortality", 1, 0

        # chronic disease: distinct patients per station, latest follow-up says controlled
        latest: dict[tuple[str, str, str], Live] = {}
        for r in self.in_month("chronic_followup"):
            key = (r.station, r.data["condition"], r.data["health_id"])
            cur = latest.get(key)
            if cur is None or (r.data["visit_date"], r.time) > (cur.data["visit_date"], cur.time):
                latest[key] = r
        for (_station, cond, _hid), r in latest.items():
            ch = self.chain(r.station, r.time)
            yield ch, f"{cond}_managed", 1, None
            yield ch, f"{cond}_controlled", int(bool(r.data["controlled"])), 1

        # ANC4: distinct deliveries (mother, birth date) per station
        anc_dates: dict[str, list[date]] = defaultdict(list)
        for r in self.live["antenatal_visit"]:
            anc_dates[r.data["health_id"]].append(date.fromisoformat(r.data["visit_date"]))
        deliveries: dict[tuple[str, str, str], Live] = {}
        for r in births:
            deliveries.setdefault((r.station, r.data["mother_health_id"], r.data["birth_date"]), r)
        for (_station, mother, bdate), r in deliveries.items():
            born = date.fromisoformat(bdate)
            n = sum(1 for v in anc_dates.get(mother, ()) if born - timedelta(days=299) <= v <= born)
            yield self.chain(r.station, r.time), "anc4", int(n >= 4), 1

        for r in self.in_month("disease_case"):
            ch = self.chain(r.station, r.time)
            yield ch, "incidence_all", 1, None
            yield ch, f"incidence_{r.data['disease'].lower()}", 1, None

    # -- resources ----------------------------------------------------------------------
    def _last_snapshot(self, rt: str) -> dict[str, Live]:
        best: dict[str, Live] = {}
        for r in self.live[rt]:
            if r.data.get("period") != self.month:
                continue
            cur = best.get(r.station)
            key = (r.data["period"], r.data["as_of"], r.time)
            if cur is None or key > (cur.data["period"], cur.data["as_of"], cur.time):
                best[r.station] = r
        return best

    def _resources(self) -> Iterable[tuple[Chain, str, int, int | None]]:
        for r in self._last_snapshot("staff_snapshot").values():
            ch, c = self.chain(r.station, r.time), r.data["counts"]
            yield ch, "doctors_per_10000", int(c.get("doctor", 0)), None
            yield ch, "stations_with_doctor", int(c.get("doctor", 0) >= 1), 1
            midwives = c.get("midwife", 0) + c.get("ob_paediatric_assistant_doctor", 0)
            yield ch, "stations_with_midwife", int(midwives >= 1), 1
        for r in self._last_snapshot("bed_snapshot").values():
            yield self.chain(r.station, r.time), "beds_per_10000", int(r.data["beds_total"]), None
        for r in self._last_snapshot("equipment_snapshot").values():
            working = sum(int(i["working"]) for i in r.data["items"])
            quantity = sum(int(i["quantity"]) for i in r.data["items"])
            yield self.chain(r.station, r.time), "equipment_working", working, quantity
        for r in self._last_snapshot("stock_snapshot").values():
            out = any(bool(i["stock_out"]) for i in r.data["items"])
            yield self.chain(r.station, r.time), "stations_with_stockout", int(out), 1

    # -- completeness -------------------------------------------------------------------
    def month_data(self) -> dict[str, datetime]:
        """Station → latest arrival of its data for the month (changes with that event
        month, plus the first arrival of each snapshot record whose period is the month)."""
        latest: dict[str, datetime] = {}
        first_snapshot: dict[tuple[str, str], Arrival] = {}
        for a in self.arrivals:
            if vn_month(a.event_time) == self.month:
                latest[a.station] = max(latest.get(a.station, a.received), a.received)
            if a.period == self.month:
                k = (a.record_type, a.record_id)
                cur = first_snapshot.get(k)
                if cur is None or a.received < cur.received:
                    first_snapshot[k] = a
        for a in first_snapshot.values():
            latest[a.station] = max(latest.get(a.station, a.received), a.received)
        return latest

    def _completeness(self) -> Iterable[tuple[Chain, str, int, int | None]]:
        data = self.month_data()
        last_day = self.ref
        stations = self.h.stations_in("VN", last_day)
        by_district: dict[str, list[str]] = defaultdict(list)
        by_province: dict[str, list[str]] = defaultdict(list)
        chains: dict[str, Chain] = {}
        for s in stations:
            ch = self.chain(s, last_day)
            chains[s] = ch
            by_district[ch[2]].append(s)
            by_province[ch[1]].append(s)
            arrived = data.get(s)
            station_deadline = deadline_end(self.month, self.deadlines["station"], self.holidays)
            yield ch, "reporting_completeness", int(arrived is not None), 1
            on_time = arrived is not None and arrived < station_deadline
            yield ch, "ontime_station", int(on_time), 1
        for tier, groups in (("district", by_district), ("province", by_province)):
            limit = deadline_end(self.month, self.deadlines[tier], self.holidays)
            for members in groups.values():
                got = [data[s] for s in members if s in data]
                ch = chains[members[0]]
                unit_chain: Chain = (
                    ch[0],
                    ch[1],
                    ch[2] if tier == "district" else "",
                    "",
                )
                on_time = bool(got) and max(got) < limit
                yield unit_chain, f"ontime_{tier}", int(on_time), 1

    # -- assembly -----------------------------------------------------------------------
    def expected(self, kind: str, units: Iterable[str]) -> Expected:
        contributions = {
            "health": self._health,
            "resources": self._resources,
            "completeness": self._completeness,
        }[kind]()
        wanted = set(units)
        num: dict[tuple[str, str], int] = defaultdict(int)
        den: dict[tuple[str, str], int] = defaultdict(int)
        for ch, ind, n, d in contributions:
            for code in ch:
                if code in wanted:
                    num[(ind, code)] += n
                    den[(ind, code)] += d or 0
        out = Expected()
        for ind in KIND_INDICATORS[kind]:
            for code in wanted:
                denominator: int | None
                if ind in COUNTS:
                    denominator = None
                elif ind in POPULATION_DENOMINATOR:
                    denominator = self.h.population(code, self.ref)
                else:
                    denominator = den[(ind, code)]
                out.parts[(ind, code)] = (num[(ind, code)], denominator)
        return out

    def children(self, unit: str) -> tuple[str, ...]:
        return tuple(c.code for c in self.h.children(unit, self.ref))

    def tier_of(self, unit: str) -> Tier:
        return self.h.tier_of(unit)
