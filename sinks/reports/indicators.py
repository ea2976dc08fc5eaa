"""Indicator definitions: pure data, no SQL (the SQL is in :mod:`sinks.reports.facts`).

Every indicator is a numerator and a denominator, each a sum over stations (station-months
for completeness) that is aggregated up the tree first and divided last:
``value = multiplier × Σ numerator / Σ denominator × scale``. Because every part is a
per-station (or per station-month) count, a parent's numerator and denominator are exactly the
sums of its children's. ``count`` indicators have no denominator (value = numerator).

Where a denominator comes from (``denominator_source``):

- ``data``: counted from the store like the numerator;
- ``population``: the hierarchy's population of the unit (``population_group``: everyone,
  surviving infants or women 15-49) at the reference date, an estimate for the year;
- ``stations``: the stations open in the unit at the reference date;
- ``expected``: units the hierarchy says should report, summed over the period's months.

How a period other than a year changes the value (``scaling``):

- ``none``: a ratio of two counts of the same period;
- ``per_year``: a rate per person and year (visits per capita, incidence): over a shorter
  period the value is the period's own rate unless the request asks to annualise
  (× 12 / months); the output says which;
- ``prorated_target``: coverage of an annual target group (surviving infants): the target is
  pro-rated to the period's months (÷ months / 12), as WHO's monthly monitoring does.

Every definition names its source (``definition``); docs/reports.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from schemas import codes
from schemas.hierarchy.population import PopulationGroup

__all__ = [
    "CONDITIONS",
    "INDICATORS",
    "KINDS",
    "Indicator",
    "ReportKind",
    "Scaling",
    "by_code",
    "for_kind",
]

ReportKind = Literal["resources", "health", "completeness"]
KINDS: tuple[ReportKind, ...] = ("resources", "health", "completeness")
Nature = Literal["flow", "snapshot", "state", "cohort", "completeness"]
DenominatorSource = Literal["data", "population", "stations", "expected", "none"]
Scaling = Literal["none", "per_year", "prorated_target"]
CONDITIONS: Final = ("hypertension", "diabetes")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator. ``multiplier`` scales the ratio (100 for %, 1000 per 1,000 …)."""

    code: str
    name: str
    kind: ReportKind
    nature: Nature
    numerator: str
    denominator: str
    attribution: str
    definition: str
    source: str
    denominator_source: DenominatorSource
    multiplier: int = 100
    unit: str = "%"
    #: for completeness: the tier whose units are counted (station, district, province)
    counted_tier: str = "station"
    population_group: PopulationGroup = "total"
    scaling: Scaling = "none"

    def value(
        self, numerator: float, denominator: float | None, scale: float = 1.0
    ) -> float | None:
        """The value from aggregated parts (``scale``: see ``scaling``); ``None`` when
        undefined (a zero or missing denominator)."""
        if self.denominator_source == "none":
            return float(numerator)
        if denominator is None or denominator == 0:
            return None
        return self.multiplier * numerator / denominator * scale


_POP = "population of the unit at the reference date (see Denominators)"
_INFANTS = (
    "surviving infants of the unit (target group under 1, see Denominators), the annual "
    "target pro-rated to the period's months"
)
_RECORDED = "the station that recorded the record (as recorded, or restated)"
_REGISTER = "the station holding the patient's register entry (chronic_enrolment)"
_DELIVERY = (
    "deliveries: distinct (mother, service month of the birth) among birth records of the "
    "period, per recording station; a twin birth is one delivery"
)
_GSO_DOCTORS = (
    "GSO national indicator metadata 'Số bác sỹ, số giường bệnh trên mười nghìn dân' "
    "(https://www.gso.gov.vn/du-lieu-dac-ta/2019/12/"
    "htcttk-cap-tinh-so-bac-sy-so-giuong-benh-tren-muoi-nghin-dan/)"
)
_HEARTS = (
    "WHO HEARTS technical package, Systems for monitoring (WHO/NMH/NVI/18.5, 2018); "
    "definitions as in Resolve to Save Lives' HEARTS360 developer guide "
    "(github.com/simpledotorg/hearts360, developer_guide.md)"
)
_CONTROL = {
    "hypertension": "blood pressure below {}/{} mmHg".format(*codes.BP_CONTROLLED_BELOW),
    "diabetes": (
        f"fasting plasma glucose below {codes.FASTING_GLUCOSE_CONTROLLED_BELOW} mmol/L or "
        f"HbA1c below {codes.HBA1C_CONTROLLED_BELOW} %"
    ),
}
_COHORT = (
    "patients of the register at the period's end (enrolled on or before its last month, not "
    "exited, not dead) enrolled at least 3 months before it (enrolment month ≤ last month − 3)"
)


def _register(cond: str) -> tuple[Indicator, ...]:
    label = cond.capitalize()
    return (
        Indicator(
            f"{cond}_registered",
            f"{label}: patients in the register",
            "health",
            "state",
            f"patients with a live {cond} register entry (chronic_enrolment) enrolled on or "
            "before the period's last month, neither exited (exit_date) nor dead (a death "
            "record) by then",
            "none (a count)",
            _REGISTER,
            f"{_HEARTS}: cumulative registrations, dead patients excluded",
            "chronic_enrolment, death",
            "none",
            1,
            "patients",
        ),
        Indicator(
            f"{cond}_new_registrations",
            f"{label}: patients newly registered",
            "health",
            "flow",
            f"{cond} register entries whose enrolment_date is in the period",
            "none (a count)",
            _REGISTER,
            f"{_HEARTS}: monthly registrations",
            "chronic_enrolment",
            "none",
            1,
            "patients",
        ),
        Indicator(
            f"{cond}_on_treatment",
            f"{label}: registered patients on treatment",
            "health",
            "state",
            "patients of the denominator whose treatment started (treatment_start_date) on or "
            "before the period's last month",
            f"patients in the {cond} register at the period's end",
            _REGISTER,
            f"{_HEARTS}: treatment register (date treatment started)",
            "chronic_enrolment, death",
            "data",
        ),
        Indicator(
            f"{cond}_followed_up",
            f"{label}: patients seen in the last 3 months",
            "health",
            "cohort",
            "patients of the denominator with a follow-up visit (chronic_followup, any "
            "station) whose visit month is one of the period's last 3 months",
            _COHORT,
            _REGISTER,
            f"{_HEARTS}: the complement of 'no visit in the past 3 months'",
            "chronic_enrolment, chronic_followup, death",
            "data",
        ),
        Indicator(
            f"{cond}_controlled",
            f"{label}: patients controlled",
            "health",
            "cohort",
            "patients of the denominator whose most recent follow-up visit in the period's "
            f"last 3 months measured {_CONTROL[cond]} (no visit, or nothing measured: not "
            "controlled)",
            _COHORT,
            _REGISTER,
            f"{_HEARTS}: control at the last visit in the last 3 months among patients "
            "registered at least 3 months earlier; thresholds WHO HEARTS / HEARTS-D",
            "chronic_enrolment, chronic_followup, death",
            "data",
        ),
        Indicator(
            f"{cond}_lost_to_follow_up",
            f"{label}: patients lost to follow-up (12 months)",
            "health",
            "state",
            "patients of the denominator enrolled more than 12 months before the period's end "
            "with no follow-up visit in its last 12 months",
            f"patients in the {cond} register at the period's end",
            _REGISTER,
            f"{_HEARTS}: '12 month lost to follow-up'",
            "chronic_enrolment, chronic_followup, death",
            "data",
        ),
    )


_HEALTH: tuple[Indicator, ...] = (
    Indicator(
        "health_record_coverage",
        "Population with a personal health record",
        "health",
        "state",
        "people with a live person record registered (service month = registration_date) on "
        "or before the period's last month and not dead by then (no death record)",
        _POP,
        _RECORDED,
        "MOH Decision 831/QĐ-BYT (11 March 2017), personal health record form for primary "
        "care; share of the population with a record",
        "person, death",
        "population",
    ),
    Indicator(
        "outpatient_visits_per_capita",
        "Outpatient visits per person per year",
        "health",
        "flow",
        "live encounter records with encounter_type = outpatient and encounter_date in the period",
        _POP,
        _RECORDED,
        "WHO Health System Strengthening handbook / Global Reference List of Core Health "
        "Indicators: outpatient department visits per person per year (station visits only)",
        "encounter",
        "population",
        1,
        "visits per person",
        scaling="per_year",
    ),
    Indicator(
        "fully_immunised_under_1",
        "Children under 1 fully immunised",
        "health",
        "flow",
        "registered children who completed the EPI under-1 schedule (BCG 1, HepB birth 1, "
        "DTP-HepB-Hib 3, OPV 3, IPV 1, measles 1; a higher dose satisfies a lower one, given "
        "anywhere) in the period: the month of the completing dose is in the period and at "
        "most 11 months after the birth month",
        _INFANTS,
        "the child's registering station (person record), the same unit as the target group",
        "GSO national indicator 'Số trẻ em dưới một tuổi được tiêm chủng đầy đủ các loại "
        "vắc xin' (https://www.gso.gov.vn/du-lieu-dac-ta/2019/12/"
        "htcttk-cap-xa-so-tre-em-duoi-mot-tuoi-duoc-tiem-chung-day-du-cac-loai-vac-xin/), "
        "over WHO/UNICEF's denominator of surviving infants",
        "person, immunization",
        "population",
        population_group="under_1",
        scaling="prorated_target",
    ),
    Indicator(
        "measles_coverage",
        "Measles (MCV1) coverage of infants",
        "health",
        "flow",
        "registered children whose first measles-containing dose (MEASLES 1 or MR 1, given "
        "anywhere) is in the period and at most 11 months after the birth month",
        _INFANTS,
        "the child's registering station (person record), the same unit as the target group",
        "WHO GHO 'MCV1 immunization coverage among 1-year-olds': children under one who "
        "received a first measles-containing dose, over surviving infants (WHO EMRO metadata, "
        "https://rho.emro.who.int/Metadata/measles-immunization-coverage-rate-mcv1)",
        "person, immunization",
        "population",
        population_group="under_1",
        scaling="prorated_target",
    ),
    *_register("hypertension"),
    *_register("diabetes"),
    Indicator(
        "anc4",
        "Women giving birth with at least 4 antenatal visits",
        "health",
        "flow",
        "deliveries of the denominator whose mother has at least 4 antenatal_visit records "
        "(any station) with a visit month in the 10 months up to and including the birth "
        "month",
        f"{_DELIVERY}, with at least one live birth",
        "the station that recorded the birth",
        "WHO GHO 'Antenatal care coverage - at least four visits': women with a live birth in "
        "the period who received antenatal care four or more times",
        "birth, antenatal_visit",
        "data",
    ),
    Indicator(
        "facility_deliveries",
        "Deliveries in a health facility",
        "health",
        "flow",
        "deliveries of the denominator with place = facility",
        _DELIVERY,
        "the station that recorded the birth",
        "MOH statistical reporting (Circular 37/2019/TT-BYT, commune forms: women giving "
        "birth at a health facility); WHO institutional delivery",
        "birth",
        "data",
    ),
    Indicator(
        "skilled_birth_attendance",
        "Deliveries attended by skilled health personnel",
        "health",
        "flow",
        "deliveries of the denominator attended by a doctor, an assistant doctor (including "
        "OB/paediatric), a nurse or a midwife (not a village midwife, a traditional birth "
        "attendant, a village health worker or family)",
        _DELIVERY,
        "the station that recorded the birth",
        "SDG indicator 3.1.2 (UNICEF/WHO): proportion of births attended by skilled health "
        "personnel; traditional birth attendants excluded even after a short training",
        "birth",
        "data",
    ),
    Indicator(
        "low_birth_weight",
        "Live births weighing less than 2,500 g",
        "health",
        "flow",
        f"live births of the period weighing less than {codes.LOW_BIRTH_WEIGHT_BELOW_G} g",
        "live births of the period with a recorded weight",
        "the station that recorded the birth",
        "WHO GHO 'Low birth weight prevalence': live-born infants weighing less than 2,500 g, "
        "whatever the gestational age; GSO 'Tỷ lệ trẻ sơ sinh có trọng lượng dưới 2500 gram'",
        "birth",
        "data",
    ),
    Indicator(
        "infant_mortality",
        "Infant deaths per 1,000 live births",
        "health",
        "flow",
        "death records of infants (age_days given, or age_years = 0) with death_date in the period",
        "live births (birth records with live_birth) with birth_date in the period",
        "the station that recorded the death; live births: the station that recorded the birth",
        "GSO infant mortality rate (IMR): deaths under one year per 1,000 live births of the "
        "same period (as the GSO under-5 metadata, "
        "https://www.gso.gov.vn/du-lieu-dac-ta/2019/12/htcttk-cap-tinh-ty-suat-chet-cua-tre-em"
        "-duoi-nam-tuoi/), from registrations rather than the census",
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
        "disease_case records classified probable or confirmed with onset_date in the period",
        _POP,
        _RECORDED,
        "MOH Circular 54/2015/TT-BYT (notification of infectious diseases) case "
        "classification; incidence per 100,000 population per year (WHO core indicator 'new "
        "cases of notifiable diseases')",
        "disease_case",
        "population",
        100_000,
        "per 100,000",
        scaling="per_year",
    ),
    *(
        Indicator(
            f"incidence_{code.lower()}",
            f"Incidence: {text}",
            "health",
            "flow",
            f"disease_case records with disease = {code}, classified probable or confirmed, "
            "onset_date in the period",
            _POP,
            _RECORDED,
            "as incidence_all",
            "disease_case",
            "population",
            100_000,
            "per 100,000",
            scaling="per_year",
        )
        for code, (text, _icd) in codes.NOTIFIABLE_DISEASES.items()
    ),
)

_SNAP = "the station's last snapshot in the period (highest period month, then as_of)"
_NOT_GSO = (
    "; not the GSO figure, which counts every doctor of the health sector (this data has "
    "the commune stations' staff only)"
)

_RESOURCES: tuple[Indicator, ...] = (
    Indicator(
        "station_doctors_per_10000",
        "Doctors at commune health stations per 10,000 population",
        "resources",
        "snapshot",
        f"counts.doctor of {_SNAP}, summed over stations",
        _POP,
        "the reporting station",
        f"adapted from {_GSO_DOCTORS}{_NOT_GSO}",
        "staff_snapshot",
        "population",
        10_000,
        "per 10,000",
    ),
    Indicator(
        "stations_with_doctor",
        "Commune health stations with a doctor",
        "resources",
        "snapshot",
        "stations whose last staff snapshot in the period has counts.doctor ≥ 1",
        "stations open in the unit at the reference date (a station that sent no staff "
        "snapshot counts as without)",
        "the reporting station",
        "GSO/MOH 'Tỷ lệ trạm y tế xã/phường/thị trấn có bác sĩ' (statistical yearbook): "
        "stations with a doctor over all stations",
        "staff_snapshot",
        "stations",
    ),
    Indicator(
        "stations_with_midwife",
        "Commune health stations with a midwife or OB/paediatric assistant doctor",
        "resources",
        "snapshot",
        "stations whose last staff snapshot in the period has counts.midwife + "
        "counts.ob_paediatric_assistant_doctor ≥ 1",
        "stations open in the unit at the reference date",
        "the reporting station",
        "GSO/MOH 'Tỷ lệ trạm y tế xã có nữ hộ sinh hoặc y sĩ sản nhi': over all stations",
        "staff_snapshot",
        "stations",
    ),
    Indicator(
        "station_beds_per_10000",
        "Commune health station beds per 10,000 population",
        "resources",
        "snapshot",
        f"beds_total of {_SNAP}, summed over stations",
        _POP,
        "the reporting station",
        f"the station beds that {_GSO_DOCTORS} leaves out ('không tính số giường tại các trạm "
        "y tế xã'): not GSO's beds per 10,000 population",
        "bed_snapshot",
        "population",
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
        "the reporting station",
        "WHO Service Availability and Readiness Assessment (SARA): equipment present and "
        "functioning",
        "equipment_snapshot",
        "data",
    ),
    Indicator(
        "stations_with_stockout",
        "Stations with a stock-out of an essential medicine",
        "resources",
        "snapshot",
        "stations whose last stock snapshot in the period has an item with stock_out = true "
        "(no usable stock at any time in the month)",
        "stations with a stock snapshot in the period (availability among reporting stations)",
        "the reporting station",
        "WHO SARA / WHO core indicator 'availability of essential medicines': tracer medicine "
        "stock-outs among facilities reporting",
        "stock_snapshot",
        "data",
    ),
)

_C37 = (
    "MOH Circular 37/2019/TT-BYT (statistical reporting regime of the health sector; "
    "deadlines 5/15/25 working days after the period for commune/district/province)"
)
_DHIS2 = "WHO / DHIS2 reporting rates: reports received over reports expected"

_COMPLETENESS: tuple[Indicator, ...] = (
    Indicator(
        "reporting_completeness",
        "Reporting completeness (station reports submitted)",
        "completeness",
        "completeness",
        "station-months with a live report_submission (the station head's signed "
        "submission for that month)",
        "station-months expected: stations open at each month's last day (hierarchy)",
        "the submitting station",
        f"{_DHIS2}; {_C37}",
        "report_submission",
        "expected",
    ),
    Indicator(
        "ontime_station",
        "On-time rate, station reports (5 working days)",
        "completeness",
        "completeness",
        "station-months whose first submission reached the broker (received_time) before "
        "the end of the station deadline (default 5 working days after the month)",
        "station-months expected",
        "the submitting station",
        f"{_DHIS2} (on time); {_C37}",
        "report_submission",
        "expected",
    ),
    Indicator(
        "reports_approved",
        "Station reports approved by the unit above",
        "completeness",
        "completeness",
        "station-months whose submission the unit above approved (sign-off ledger), not "
        "sent back since",
        "station-months expected",
        "the submitting station",
        f"{_C37} (the district checks and forwards the commune reports)",
        "report_submission, signoff",
        "expected",
    ),
    Indicator(
        "ontime_district",
        "On-time rate, districts (15 working days)",
        "completeness",
        "completeness",
        "district-months whose every expected station-month was approved before the end of "
        "the district deadline (default 15 working days after the month)",
        "district-months expected: districts with at least one open station at each month's "
        "last day",
        "the district (regional centre)",
        _C37,
        "signoff",
        "expected",
        counted_tier="district",
    ),
    Indicator(
        "ontime_province",
        "On-time rate, provinces (25 working days)",
        "completeness",
        "completeness",
        "province-months the province locked before the end of the province deadline "
        "(default 25 working days after the month)",
        "province-months expected",
        "the province",
        _C37,
        "signoff",
        "expected",
        counted_tier="province",
    ),
)

INDICATORS: tuple[Indicator, ...] = _HEALTH + _RESOURCES + _COMPLETENESS
_BY_CODE = {i.code: i for i in INDICATORS}
assert len(_BY_CODE) == len(INDICATORS), "an indicator code is declared twice"


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
