"""Indicator definitions: pure data, no SQL (the SQL is in :mod:`sinks.reports.facts`).

Every indicator is a numerator and a denominator, each a sum over stations (station-months
for completeness) that is aggregated up the tree first and divided last:
``value = multiplier × Σ numerator / Σ denominator``. Because every part is a per-station
(or per station-month) count, a parent's numerator and denominator are exactly the sums of
its children's. ``count`` indicators have no denominator (value = numerator).

Where a denominator comes from:

- ``data``: counted from the store like the numerator;
- ``population``: the hierarchy's population of the unit at the reference date;
- ``expected``: units the hierarchy says should report, summed over the period's months.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas import codes

__all__ = ["INDICATORS", "KINDS", "Indicator", "ReportKind", "by_code", "for_kind"]

ReportKind = Literal["resources", "health", "completeness"]
KINDS: tuple[ReportKind, ...] = ("resources", "health", "completeness")
Nature = Literal["flow", "snapshot", "state", "cohort", "completeness"]
DenominatorSource = Literal["data", "population", "expected", "none"]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator. ``multiplier`` scales the ratio (100 for %, 1000 per 1,000 …)."""

    code: str
    name: str
    kind: ReportKind
    nature: Nature
    numerator: str
    denominator: str
    source: str
    denominator_source: DenominatorSource
    multiplier: int = 100
    unit: str = "%"
    #: for completeness: the tier whose units are counted (station, district, province)
    counted_tier: str = "station"

    def value(self, numerator: float, denominator: float | None) -> float | None:
        """The indicator's value from aggregated parts; ``None`` when undefined."""
        if self.denominator_source == "none":
            return float(numerator)
        if denominator is None or denominator == 0:
            return None
        return self.multiplier * numerator / denominator


_P: DenominatorSource = "population"
_POP_TEXT = "population of the unit (hierarchy reference data) at the reference date"

_HEALTH: tuple[Indicator, ...] = (
    Indicator(
        "health_record_coverage",
        "Population with a personal health record",
        "health",
        "state",
        "live person records whose current version's event month is on or before the "
        "period's last month, attributed to the recording station",
        _POP_TEXT,
        "person",
        _P,
    ),
    Indicator(
        "outpatient_visits_per_capita",
        "Outpatient visits per capita",
        "health",
        "flow",
        "live encounter records with encounter_type = outpatient, event month in the period",
        _POP_TEXT,
        "encounter",
        _P,
        1,
        "visits per person",
    ),
    Indicator(
        "fully_immunised_under_1",
        "Children under 1 fully immunised",
        "health",
        "cohort",
        "children of the denominator who received every dose of the EPI under-1 schedule "
        "(BCG 1, HepB birth 1, DTP-HepB-Hib 3, OPV 3, IPV 1, measles 1) in a month at most "
        "11 months after their birth month",
        "registered children (live person records) turning 1 in the period (birth month + 12 "
        "months inside the period), attributed to the person's recording station",
        "person, immunization",
        "data",
    ),
    Indicator(
        "measles_coverage",
        "Measles coverage (MCV1) among infants",
        "health",
        "flow",
        "first measles-containing doses (MEASLES dose 1 or MR dose 1), event month in the "
        "period, given to a registered child in a month at most 11 months after the birth "
        "month, attributed to the vaccinating station",
        "live births (birth records with live_birth) with event month in the period",
        "immunization, person, birth",
        "data",
    ),
    Indicator(
        "hypertension_managed",
        "Hypertension patients under management",
        "health",
        "flow",
        "distinct patients (health id) per station with a hypertension follow-up whose event "
        "month is in the period",
        "none (a count)",
        "chronic_followup",
        "none",
        1,
        "patients",
    ),
    Indicator(
        "hypertension_controlled",
        "Hypertension patients controlled",
        "health",
        "flow",
        "of the denominator, patients whose latest follow-up in the period (visit_date, then "
        "event_time) at that station says controlled",
        "hypertension patients under management",
        "chronic_followup",
        "data",
    ),
    Indicator(
        "diabetes_managed",
        "Diabetes patients under management",
        "health",
        "flow",
        "distinct patients (health id) per station with a diabetes follow-up whose event "
        "month is in the period",
        "none (a count)",
        "chronic_followup",
        "none",
        1,
        "patients",
    ),
    Indicator(
        "diabetes_controlled",
        "Diabetes patients controlled",
        "health",
        "flow",
        "of the denominator, patients whose latest follow-up in the period at that station "
        "says controlled",
        "diabetes patients under management",
        "chronic_followup",
        "data",
    ),
    Indicator(
        "anc4",
        "Women giving birth with at least 4 antenatal visits",
        "health",
        "cohort",
        "deliveries of the denominator whose mother has at least 4 antenatal_visit records "
        "dated within the 300 days up to and including the birth date",
        "deliveries (distinct mother × birth date among birth records) with event month in "
        "the period, attributed to the station recording the birth",
        "birth, antenatal_visit",
        "data",
    ),
    Indicator(
        "facility_births",
        "Births at a health facility",
        "health",
        "flow",
        "birth records with place = facility, event month in the period",
        "all birth records (live and still) with event month in the period",
        "birth",
        "data",
    ),
    Indicator(
        "infant_mortality",
        "Infant deaths per 1,000 live births",
        "health",
        "flow",
        "death records of infants (age_days given, or age_years = 0), event month in the period",
        "live births (birth records with live_birth), event month in the period",
        "death, birth",
        "data",
        1000,
        "per 1,000 live births",
    ),
    Indicator(
        "incidence_all",
        "Notifiable disease incidence, all diseases",
        "health",
        "flow",
        "disease_case records (any classification), event month in the period",
        _POP_TEXT + " (not annualised)",
        "disease_case",
        _P,
        100_000,
        "per 100,000",
    ),
    *(
        Indicator(
            f"incidence_{code.lower()}",
            f"Incidence: {text}",
            "health",
            "flow",
            f"disease_case records with disease = {code}, event month in the period",
            _POP_TEXT + " (not annualised)",
            "disease_case",
            _P,
            100_000,
            "per 100,000",
        )
        for code, (text, _icd) in codes.NOTIFIABLE_DISEASES.items()
    ),
)

_SNAP = "the station's last snapshot in the period (highest period month, then as_of)"

_RESOURCES: tuple[Indicator, ...] = (
    Indicator(
        "doctors_per_10000",
        "Doctors per 10,000 population",
        "resources",
        "snapshot",
        f"counts.doctor of {_SNAP}, summed over stations",
        _POP_TEXT,
        "staff_snapshot",
        _P,
        10_000,
        "per 10,000",
    ),
    Indicator(
        "stations_with_doctor",
        "Stations with a doctor",
        "resources",
        "snapshot",
        "stations whose last staff snapshot in the period has counts.doctor ≥ 1",
        "stations with a staff snapshot in the period",
        "staff_snapshot",
        "data",
    ),
    Indicator(
        "stations_with_midwife",
        "Stations with a midwife or OB/paediatric assistant doctor",
        "resources",
        "snapshot",
        "stations whose last staff snapshot in the period has counts.midwife + "
        "counts.ob_paediatric_assistant_doctor ≥ 1",
        "stations with a staff snapshot in the period",
        "staff_snapshot",
        "data",
    ),
    Indicator(
        "beds_per_10000",
        "Station beds per 10,000 population",
        "resources",
        "snapshot",
        f"beds_total of {_SNAP}, summed over stations",
        _POP_TEXT,
        "bed_snapshot",
        _P,
        10_000,
        "per 10,000",
    ),
    Indicator(
        "equipment_working",
        "Equipment working rate",
        "resources",
        "snapshot",
        f"Σ items[].working of {_SNAP}",
        f"Σ items[].quantity of {_SNAP}",
        "equipment_snapshot",
        "data",
    ),
    Indicator(
        "stations_with_stockout",
        "Stations with a stock-out of an essential medicine",
        "resources",
        "snapshot",
        "stations whose last stock snapshot in the period has an item with stock_out = true",
        "stations with a stock snapshot in the period",
        "stock_snapshot",
        "data",
    ),
)

_DUE = "data for a month = its changes with that event month, plus the first arrival of "
_DUE += "each snapshot record for that month's period"

_COMPLETENESS: tuple[Indicator, ...] = (
    Indicator(
        "reporting_completeness",
        "Reporting completeness (stations)",
        "completeness",
        "completeness",
        f"station-months with data ({_DUE})",
        "station-months expected: stations open at each month's last day (hierarchy)",
        "all *_changes",
        "expected",
    ),
    Indicator(
        "ontime_station",
        "On-time rate, stations (5 working days)",
        "completeness",
        "completeness",
        "station-months with data whose every arrival (received_time) came before the end of "
        "the 5th working day after the month",
        "station-months expected",
        "all *_changes",
        "expected",
    ),
    Indicator(
        "ontime_district",
        "On-time rate, districts (15 working days)",
        "completeness",
        "completeness",
        "district-months with data whose every arrival from their stations came before the "
        "end of the 15th working day after the month",
        "district-months expected: districts with at least one open station at each month's "
        "last day",
        "all *_changes",
        "expected",
        counted_tier="district",
    ),
    Indicator(
        "ontime_province",
        "On-time rate, provinces (25 working days)",
        "completeness",
        "completeness",
        "province-months with data whose every arrival came before the end of the 25th "
        "working day after the month",
        "province-months expected",
        "all *_changes",
        "expected",
        counted_tier="province",
    ),
)

INDICATORS: tuple[Indicator, ...] = _HEALTH + _RESOURCES + _COMPLETENESS
_BY_CODE = {i.code: i for i in INDICATORS}


def by_code(code: str) -> Indicator:
    return _BY_CODE[code]


def for_kind(kind: str, tier: str = "national") -> tuple[Indicator, ...]:
    """The indicators of a report kind at a tier (unit-level completeness only for tiers
    above the counted units: district on-time needs a province or national report)."""
    order = {"national": 0, "province": 1, "district": 2, "station": 3}
    return tuple(
        i
        for i in INDICATORS
        if i.kind == kind and (i.kind != "completeness" or order[i.counted_tier] > order[tier])
    )
