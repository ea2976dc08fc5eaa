"""The report oracle: every indicator of docs/reports.md recomputed in plain Python.

Independent of ``sinks``: nothing here reads a store or runs SQL. The inputs are every
accepted change as it reached the broker (:class:`Version`: its data, its version, its
receive time), the sign-off decisions taken (:class:`Ledger`) and the hierarchy (placement at
event time, restating, children, population denominators, stations expected to report).

A record counts in its latest version (basis ``latest``), or in the latest version that
reached the broker before its station's approval of the month (basis ``submitted``); each
indicator
is computed as contributions ``(chain, indicator, numerator, denominator)`` where ``chain``
is the codes of the national, province, district and station units the record counts under
(as recorded: the hierarchy at its event time; restated: the current structure); a unit's
parts are the sums over contributions whose chain holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import holidays as holidays_lib

from producers.config import SimulationConfig
from schemas import codes
from schemas.hierarchy import VN_TZ, Hierarchy, Tier
from tests.e2e.oracle_health import Live, health_contributions

__all__ = ["Expected", "Ledger", "Oracle", "Version", "deadline_end", "month_end", "vn_month"]

Chain = tuple[str, str, str, str]  # national, province, district, station
Parts = tuple[int, int | None]

MULTIPLIER: dict[str, int] = {
    "health_record_coverage": 100,
    "outpatient_visits_per_capita": 1,
    "fully_immunised_under_1": 100,
    "measles_coverage": 100,
    "anc4": 100,
    "facility_deliveries": 100,
    "skilled_birth_attendance": 100,
    "low_birth_weight": 100,
    "infant_mortality": 1000,
    "incidence_all": 100_000,
    "station_doctors_per_10000": 10_000,
    "stations_with_doctor": 100,
    "stations_with_midwife": 100,
    "station_beds_per_10000": 10_000,
    "equipment_working": 100,
    "stations_with_stockout": 100,
    "reporting_completeness": 100,
    "ontime_station": 100,
    "reports_approved": 100,
    "ontime_district": 100,
    "ontime_province": 100,
}
REGISTER = ("registered", "new_registrations", "on_treatment", "followed_up", "controlled",
            "lost_to_follow_up")  # fmt: skip
COUNTS = frozenset(
    f"{c}_{k}" for c in ("hypertension", "diabetes") for k in ("registered", "new_registrations")
)
for _c in ("hypertension", "diabetes"):
    for _k in REGISTER:
        MULTIPLIER.setdefault(f"{_c}_{_k}", 1 if f"{_c}_{_k}" in COUNTS else 100)
for _disease in codes.NOTIFIABLE_DISEASES:
    MULTIPLIER[f"incidence_{_disease.lower()}"] = 100_000

POPULATION = {
    "health_record_coverage": "total",
    "outpatient_visits_per_capita": "total",
    "incidence_all": "total",
    "station_doctors_per_10000": "total",
    "station_beds_per_10000": "total",
    "fully_immunised_under_1": "under_1",
    "measles_coverage": "under_1",
    **{f"incidence_{d.lower()}": "total" for d in codes.NOTIFIABLE_DISEASES},
}
STATIONS = frozenset({"stations_with_doctor", "stations_with_midwife"})
PRORATED = frozenset({"fully_immunised_under_1", "measles_coverage"})

HEALTH = (
    "health_record_coverage",
    "outpatient_visits_per_capita",
    "fully_immunised_under_1",
    "measles_coverage",
    *(f"{c}_{k}" for c in ("hypertension", "diabetes") for k in REGISTER),
    "anc4",
    "facility_deliveries",
    "skilled_birth_attendance",
    "low_birth_weight",
    "infant_mortality",
    "incidence_all",
    *(f"incidence_{d.lower()}" for d in codes.NOTIFIABLE_DISEASES),
)
RESOURCES = (
    "station_doctors_per_10000",
    "stations_with_doctor",
    "stations_with_midwife",
    "station_beds_per_10000",
    "equipment_working",
    "stations_with_stockout",
)
COMPLETENESS = (
    "reporting_completeness",
    "ontime_station",
    "reports_approved",
    "ontime_district",
    "ontime_province",
)
KIND_INDICATORS: dict[str, tuple[str, ...]] = {
    "health": HEALTH,
    "resources": RESOURCES,
    "completeness": COMPLETENESS,
}
_SERVICE_FIELD = {
    "person": "registration_date",
    "encounter": "encounter_date",
    "immunization": "date",
    "chronic_followup": "visit_date",
    "chronic_enrolment": "enrolment_date",
    "antenatal_visit": "visit_date",
    "birth": "birth_date",
    "death": "death_date",
    "disease_case": "onset_date",
}


# --- dates ---------------------------------------------------------------------------------
def vn_month(t: datetime) -> str:
    """``YYYY-MM`` of ``t`` in Vietnam time."""
    local = t.astimezone(VN_TZ)
    return f"{local.year:04d}-{local.month:02d}"


def month_end(month: str) -> date:
    y, m = int(month[:4]), int(month[5:7])
    return date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)


def _working(day: date) -> bool:
    return bool(holidays_lib.country_holidays("VN", years=day.year).is_working_day(day))


def deadline_end(month: str, working_days: int) -> datetime:
    """The instant the N-th working day (Vietnam's calendar) after ``month`` ends."""
    day, n = month_end(month), 0
    while n < working_days:
        day += timedelta(days=1)
        if _working(day):
            n += 1
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=VN_TZ).astimezone(UTC)


def service_month(record_type: str, data: Mapping[str, Any] | None, entered: datetime) -> str:
    if data is None:
        return vn_month(entered)
    value = data.get(_SERVICE_FIELD.get(record_type, "period"))
    return str(value)[:7] if value else vn_month(entered)


# --- the simulated month ----------------------------------------------------------------
PROVINCE = "12"  # Lai Châu: 38 stations in 8 regional health centres (2026)
LEAD_DAYS = 7  # simulate a week before the month: corrections and late entries reach into it


def report_month(today: date) -> str:
    """Last month, or the month before when last month's reports cannot be in yet."""
    back = 1 if today.day >= 12 else 2
    first = today.replace(day=1)
    for _ in range(back):
        first = (first - timedelta(days=1)).replace(day=1)
    return f"{first.year:04d}-{first.month:02d}"


def oracle_simulation(now: datetime) -> tuple[str, SimulationConfig]:
    """The month the oracle reports on at instant ``now`` and the simulation that feeds it:
    a week before that month to yesterday (late entries and submissions past the month)."""
    month = report_month(now.astimezone(VN_TZ).date())
    first = date(int(month[:4]), int(month[5:7]), 1)
    start = first - timedelta(days=LEAD_DAYS)
    yesterday = min(now.date(), now.astimezone(VN_TZ).date()) - timedelta(days=1)
    return month, SimulationConfig(
        seed=5,
        provinces=(PROVINCE,),
        start=start.isoformat(),
        days=(yesterday - start).days + 1,
        scale=0.01,
        activity_scale=2.0,
        correction_rate=0.06,
        deletion_rate=0.03,
        offline_station_share=0.3,
        offline_days=(3, 8),
        bad_fraction=0.003,
    )


# --- inputs --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Version:
    """One accepted change as it reached the raw topic (its first delivery)."""

    record_type: str
    record_id: str
    version: int
    op: str
    station: str
    event_time: datetime
    received: datetime
    data: Mapping[str, Any] | None


@dataclass
class Ledger:
    """The sign-off decisions in force: approvals per (station, month), locks per
    (province, month), as the broker received them."""

    approvals: dict[tuple[str, str], datetime] = field(default_factory=dict)
    locks: dict[tuple[str, str], datetime] = field(default_factory=dict)


@dataclass
class Expected:
    """Expected parts per (indicator, unit), and the period scaling of the values."""

    parts: dict[tuple[str, str], Parts] = field(default_factory=dict)
    months: int = 1

    def get(self, indicator: str, unit: str) -> Parts:
        return self.parts[(indicator, unit)]

    def value(self, indicator: str, unit: str) -> float | None:
        num, den = self.get(indicator, unit)
        if indicator in COUNTS:
            return float(num)
        if not den:
            return None
        scale = 12 / self.months if indicator in PRORATED else 1.0
        return MULTIPLIER[indicator] * num / den * scale


# --- the oracle ----------------------------------------------------------------------------
class Oracle:
    """Expected report parts for one single-month period."""

    def __init__(
        self,
        versions: Sequence[Version],
        hierarchy: Hierarchy,
        month: str,
        *,
        deadlines: Mapping[str, int] | None = None,
        ledger: Ledger | None = None,
        mode: str = "as-recorded",
        basis: str = "latest",
    ) -> None:
        self.h = hierarchy
        self.month = month
        self.ref = month_end(month) if mode == "as-recorded" else max(
            month_end(month), hierarchy.current_date
        )  # fmt: skip
        self.mode = mode
        self.deadlines = dict(deadlines or {"station": 5, "district": 15, "province": 25})
        self.ledger = ledger or Ledger()
        self._chains: dict[tuple[str, date], Chain] = {}
        history: dict[tuple[str, str], list[Version]] = defaultdict(list)
        for v in versions:
            history[(v.record_type, v.record_id)].append(v)
        self.history = history
        self.live: dict[str, list[Live]] = defaultdict(list)
        for (rt, rid), vs in history.items():
            chosen = self._latest(vs) if basis == "latest" else self._as_submitted(vs)
            if chosen is None or chosen.op == "delete" or chosen.data is None:
                continue
            month_of = service_month(rt, chosen.data, chosen.event_time)
            self.live[rt].append(
                Live(rt, rid, chosen.station, chosen.event_time, month_of, chosen.data)
            )

    @staticmethod
    def _latest(vs: Sequence[Version]) -> Version | None:
        return max(vs, key=lambda v: (v.version, v.event_time))

    def _as_submitted(self, vs: Sequence[Version]) -> Version | None:
        """The latest version received before the approval of its station's report month
        (one month: every record is consulted for it)."""
        eligible = [
            v
            for v in vs
            if (cutoff := self.ledger.approvals.get((v.station, self.month))) is not None
            and v.received <= cutoff
        ]
        return self._latest(eligible) if eligible else None

    # -- placement ----------------------------------------------------------------------
    def chain(self, station: str, at: datetime | date) -> Chain:
        day = at.astimezone(VN_TZ).date() if isinstance(at, datetime) else at
        key = (station, day)
        got = self._chains.get(key)
        if got is None:
            if self.mode == "as-recorded":
                p = self.h.lookup_site(station, day)
            else:  # restated: the station, or the commune it merged into, today
                now = self.ref
                code = station if self.h.exists(station, now) else (
                    self.h.successor_station(station, now) or station
                )  # fmt: skip
                p = self.h.lookup(code, now)
            got = (p.national.code, p.province.code, p.district.code, p.station.code)
            self._chains[key] = got
        return got

    def at(self, r: Live) -> Chain:
        return self.chain(r.station, r.event_time)

    # -- resources ----------------------------------------------------------------------
    def _last_snapshot(self, rt: str) -> dict[Chain, Live]:
        best: dict[Chain, Live] = {}
        for r in self.live[rt]:
            if r.data.get("period") != self.month:
                continue
            where = self.at(r)
            cur = best.get(where)
            key = (r.data["period"], r.data["as_of"], r.event_time, r.record_id)
            if cur is None or key > (cur.data["period"], cur.data["as_of"], cur.event_time,
                                     cur.record_id):  # fmt: skip
                best[where] = r
        return best

    def _resources(self) -> Iterable[tuple[Chain, str, int, int | None]]:
        for where, r in self._last_snapshot("staff_snapshot").items():
            c = r.data["counts"]
            yield where, "station_doctors_per_10000", int(c.get("doctor", 0)), None
            yield where, "stations_with_doctor", int(c.get("doctor", 0) >= 1), None
            midwives = c.get("midwife", 0) + c.get("ob_paediatric_assistant_doctor", 0)
            yield where, "stations_with_midwife", int(midwives >= 1), None
        for where, r in self._last_snapshot("bed_snapshot").items():
            yield where, "station_beds_per_10000", int(r.data["beds_total"]), None
        for where, r in self._last_snapshot("equipment_snapshot").items():
            working = sum(int(i["working"]) for i in r.data["items"])
            quantity = sum(int(i["quantity"]) for i in r.data["items"])
            yield where, "equipment_working", working, quantity
        for where, r in self._last_snapshot("stock_snapshot").items():
            out = any(bool(i["stock_out"]) for i in r.data["items"])
            yield where, "stations_with_stockout", int(out), 1

    # -- completeness -------------------------------------------------------------------
    def _submissions(self) -> dict[str, datetime]:
        """Station → when its live submission for the month first reached the broker."""
        out: dict[str, datetime] = {}
        for r in self.live["report_submission"]:
            if r.data.get("period") == self.month:
                first = min(v.received for v in self.history[("report_submission", r.record_id)])
                out[r.station] = first
        return out

    def _completeness(self) -> Iterable[tuple[Chain, str, int, int | None]]:
        submitted = self._submissions()
        last_day = month_end(self.month)
        d_station = deadline_end(self.month, self.deadlines["station"])
        d_district = deadline_end(self.month, self.deadlines["district"])
        d_province = deadline_end(self.month, self.deadlines["province"])
        districts: dict[Chain, bool] = {}
        provinces: dict[Chain, str] = {}
        for s in self.h.stations_in("VN", last_day):
            pl = self.h.lookup(s, last_day)
            where = self.chain(s, last_day)
            got = submitted.get(s)
            approved = self.ledger.approvals.get((s, self.month)) if got else None
            yield where, "reporting_completeness", int(got is not None), 1
            yield where, "ontime_station", int(got is not None and got < d_station), 1
            yield where, "reports_approved", int(approved is not None), 1
            d_key: Chain = (where[0], where[1], where[2], "")
            districts[d_key] = districts.get(d_key, True) and (
                approved is not None and approved < d_district
            )
            provinces[(where[0], where[1], "", "")] = pl.province.code
        for key, ok in districts.items():
            yield key, "ontime_district", int(ok), 1
        for key, recorded in provinces.items():
            locked = self.ledger.locks.get((recorded, self.month))
            yield key, "ontime_province", int(locked is not None and locked < d_province), 1

    # -- assembly -----------------------------------------------------------------------
    def expected(self, kind: str, units: Iterable[str]) -> Expected:
        if kind == "health":
            contributions: Iterable[tuple[Any, str, int, int | None]] = health_contributions(
                self.live, self.month, self.at
            )
        elif kind == "resources":
            contributions = self._resources()
        else:
            contributions = self._completeness()
        wanted = set(units)
        num: dict[tuple[str, str], int] = defaultdict(int)
        den: dict[tuple[str, str], int] = defaultdict(int)
        for ch, ind, n, d in contributions:
            for code in ch:
                if code in wanted:
                    num[(ind, code)] += n
                    den[(ind, code)] += d or 0
        out = Expected(months=1)
        for ind in KIND_INDICATORS[kind]:
            for code in wanted:
                denominator: int | None
                if ind in COUNTS:
                    denominator = None
                elif ind in POPULATION:
                    denominator = self.h.population(code, self.ref, POPULATION[ind])  # type: ignore[arg-type]
                elif ind in STATIONS:
                    tier = self.h.tier_of(code)
                    denominator = (
                        1 if tier is Tier.STATION else len(self.h.stations_in(code, self.ref))
                    )
                else:
                    denominator = den[(ind, code)]
                out.parts[(ind, code)] = (num[(ind, code)], denominator)
        return out

    def children(self, unit: str) -> tuple[str, ...]:
        return tuple(c.code for c in self.h.children(unit, self.ref))
