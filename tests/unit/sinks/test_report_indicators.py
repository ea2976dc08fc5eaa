"""Indicator maths on hand-made store files: every numerator and denominator checked by hand
against the definitions of docs/reports.md (service-date attribution, official definitions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from schemas.hierarchy import VN_TZ, Hierarchy
from sinks.reports import Report, ReportConfig, by_code
from tests.report_store import Stores, change

A, A2, A3 = "00004", "00008", "00025"  # KV001, Hà Nội (01)
B = "00070"  # KV002, Hà Nội
C = "25747"  # KV718, Hồ Chí Minh (79)
OLD = "02635"  # Lào Cai (10) before 2025-07-01, merged into a commune of province 15
OCT = date(2026, 10, 31)

#: the indicator maths, unsuppressed (national reports suppress small cells by default)
EXACT = ReportConfig(suppression_threshold=1)


def t(y: int, m: int, d: int, hh: int = 9) -> datetime:
    return datetime(y, m, d, hh, tzinfo=VN_TZ)


def day(text: str) -> datetime:
    y, m, d = map(int, text.split("-"))
    return t(y, m, d)


def person(hid: str, birth: str, registered: str, phone: str | None = None) -> dict[str, Any]:
    data = {
        "health_id": hid,
        "full_name": "N",
        "sex": "female",
        "birth_date": birth,
        "ethnicity": "01",
        "residence_commune": A,
        "registration_date": registered,
    }
    if phone:
        data["phone"] = phone
    return data


FULL = {"BCG": 1, "HEPB_BIRTH": 1, "DTP_HEPB_HIB": 3, "OPV": 3, "IPV": 1, "MEASLES": 1}


def dose(h: Hierarchy, hid: str, vac: str, n: int, when: str, station: str) -> Any:
    data = {"health_id": hid, "vaccine": vac, "dose_number": n, "date": when}
    return change(h, "immunization", f"{hid}:{vac}-{n}", data, station, day(when))


def schedule(h: Hierarchy, hid: str, when: str, station: str, **other: str) -> list[Any]:
    """Every dose of the under-1 schedule on ``when`` (``vaccine=day`` moves one, ``=""`` drops
    it)."""
    out = []
    for vac, n in FULL.items():
        on = other.get(vac, when)
        if on:
            out.append(dose(h, hid, vac, n, on, station))
    return out


def staff(doctor: int, midwife: int = 0, ob: int = 0) -> dict[str, int]:
    return {
        "doctor": doctor,
        "assistant_doctor": 1,
        "ob_paediatric_assistant_doctor": ob,
        "nurse": 2,
        "midwife": midwife,
        "pharmacist": 0,
        "village_health_worker": 4,
    }


def snap(h: Hierarchy, rt: str, station: str, period: str, body: dict[str, Any], **kw: Any) -> Any:
    res = {"staff_snapshot": "staff", "bed_snapshot": "beds", "equipment_snapshot": "equipment",
           "stock_snapshot": "stock"}[rt]  # fmt: skip
    y, m = int(period[:4]), int(period[5:])
    when = kw.pop("when", t(y, m, 28))
    data = {"period": period, "as_of": when.date().isoformat(), **body}
    return change(h, rt, f"{station}:{res}:{period}", data, station, when, **kw)


def birth(mid: str, bd: str, place: str, attendant: str, live: bool, grams: int | None) -> Any:
    data: dict[str, Any] = {"mother_health_id": mid, "birth_date": bd, "place": place,
                            "attendant": attendant, "live_birth": live}  # fmt: skip
    if grams is not None:
        data["weight_grams"] = grams
    return data


def enrol(h: Hierarchy, hid: str, cond: str, on: str, station: str, **kw: str) -> Any:
    data = {"health_id": hid, "condition": cond, "enrolment_date": on, **kw}
    return change(h, "chronic_enrolment", f"{hid}:{cond}", data, station, day(on))


def visit(h: Hierarchy, hid: str, cond: str, on: str, station: str, **m: Any) -> Any:
    if "bp" in m:
        sys_, dia = m.pop("bp")
        m["blood_pressure"] = {"systolic_mmhg": sys_, "diastolic_mmhg": dia}
    data = {"health_id": hid, "condition": cond, "visit_date": on, "measurements": m}
    return change(h, "chronic_followup", f"{hid}:{cond}:{on}", data, station, day(on))


def scenario(h: Hierarchy) -> list[dict[str, Any]]:
    ch: list[dict[str, Any]] = []
    # --- children and doses --------------------------------------------------------------
    # k1 (A): born 2025-11, completes the schedule on 2026-10-02 (month 11 of life): FIC + MCV1
    ch.append(change(h, "person", "1000000001", person("1000000001", "2025-11-10", "2025-11-11"),
                     A, t(2025, 11, 11)))  # fmt: skip
    ch += schedule(h, "1000000001", "2026-10-02", A)
    # k2 (A): no OPV (not fully immunised), measles in October: MCV1
    ch.append(change(h, "person", "1000000002", person("1000000002", "2025-11-20", "2025-11-21"),
                     A, t(2025, 11, 21)))  # fmt: skip
    ch += schedule(h, "1000000002", "2026-10-02", A, OPV="")
    # k3 (C): born 2025-10; IPV only in 2026-10 (month 12): not fully immunised; MCV1 in Sept
    ch.append(change(h, "person", "1000000003", person("1000000003", "2025-10-01", "2025-10-02"),
                     C, t(2025, 10, 2)))  # fmt: skip
    ch += schedule(h, "1000000003", "2026-09-01", C, IPV="2026-10-02")
    # k4 (B): measles given by another station (A2) in October: counts for B, the child's
    ch.append(change(h, "person", "1000000004", person("1000000004", "2026-01-15", "2026-01-16"),
                     B, t(2026, 1, 16)))  # fmt: skip
    ch.append(dose(h, "1000000004", "MEASLES", 1, "2026-10-03", A2))
    # --- adults: registrations, a deletion, a later one, a death, a phone correction ------
    ch.append(change(h, "person", "2000000001", person("2000000001", "1980-01-01", "2026-10-10"),
                     B, t(2026, 10, 10)))  # fmt: skip
    ch.append(change(h, "person", "2000000002", person("2000000002", "1980-01-01", "2026-10-10"),
                     B, t(2026, 10, 10)))  # fmt: skip
    ch.append(change(h, "person", "2000000002", None, B, t(2026, 10, 11), version=2, op="delete"))
    ch.append(change(h, "person", "2000000003", person("2000000003", "1980-01-01", "2026-11-02"),
                     B, t(2026, 11, 2)))  # fmt: skip
    ch.append(change(h, "person", "2000000004", person("2000000004", "1950-01-01", "2026-05-01"),
                     A, t(2026, 5, 1)))  # fmt: skip
    ch.append(change(h, "death", "2000000004:d", {"health_id": "2000000004",
                     "death_date": "2026-09-15", "cause_icd10": "I21", "age_years": 76},
                     A, t(2026, 9, 16)))  # fmt: skip
    ch.append(change(h, "person", "2000000005", person("2000000005", "1990-01-01", "2026-09-20"),
                     A, t(2026, 9, 20)))  # fmt: skip
    ch.append(change(h, "person", "2000000005",
                     person("2000000005", "1990-01-01", "2026-09-20", phone="0912345678"),
                     A, t(2026, 10, 15), version=2))  # fmt: skip  # a phone correction
    # --- encounters ------------------------------------------------------------------------
    enc = {"health_id": "2000000001", "encounter_date": "2026-10-10", "diagnoses": ["J06"]}
    oct_ = t(2026, 10, 10)
    ch.append(change(h, "encounter", "2000000001:e1", enc, A, oct_))
    ch.append(change(h, "encounter", "2000000001:e2", enc, A, oct_))
    ch.append(change(h, "encounter", "2000000001:e3", {**enc, "encounter_type": "inpatient"},
                     A, oct_))  # fmt: skip
    ch.append(change(h, "encounter", "2000000001:e4", {**enc, "encounter_type": "inpatient"},
                     B, oct_))  # fmt: skip
    ch.append(change(h, "encounter", "2000000001:e4", enc, B, t(2026, 10, 12), version=2))
    ch.append(change(h, "encounter", "2000000001:e5", {**enc, "encounter_date": "2026-09-10"},
                     C, t(2026, 9, 10)))  # fmt: skip
    # a paper register back-entered in December: visit of 30 October
    ch.append(change(h, "encounter", "2000000001:e6", {**enc, "encounter_date": "2026-10-30"},
                     A2, t(2026, 12, 3), received_time=t(2026, 12, 3)))  # fmt: skip
    # --- births ------------------------------------------------------------------------------
    ch.append(change(h, "birth", "3000000001:b1",
                     birth("3000000001", "2026-10-05", "facility", "midwife", True, 2400),
                     A, t(2026, 10, 5)))  # fmt: skip
    ch.append(change(h, "birth", "3000000001:b2",
                     birth("3000000001", "2026-10-05", "facility", "midwife", True, 2600),
                     A, t(2026, 10, 5)))  # fmt: skip  # twins: one delivery
    ch.append(change(h, "birth", "3000000002:b",
                     birth("3000000002", "2026-10-12", "home", "village_midwife", True, 3000),
                     A, t(2026, 10, 12)))  # fmt: skip
    ch.append(change(h, "birth", "3000000003:b",
                     birth("3000000003", "2026-10-20", "facility", "doctor", False, 1800),
                     C, t(2026, 10, 20)))  # fmt: skip  # a stillbirth
    # born on the 31st, entered on the 2nd: counted in October
    ch.append(change(h, "birth", "3000000004:b",
                     birth("3000000004", "2026-10-31", "facility", "nurse", True, None),
                     A, t(2026, 11, 2)))  # fmt: skip

    def anc(mid: str, n: int, on: str, station: str) -> Any:
        data = {"health_id": mid, "visit_number": n, "gestational_weeks": 8 + 6 * n,
                "visit_date": on}  # fmt: skip
        return change(h, "antenatal_visit", f"{mid}:v{n}", data, station, day(on))

    ch += [anc("3000000001", n, f"2026-0{n + 3}-01", A) for n in range(1, 5)]
    ch += [anc("3000000002", n, f"2026-0{n + 3}-01", A) for n in range(1, 4)]
    ch += [anc("3000000004", n, f"2025-12-0{n}", B) for n in range(1, 3)]  # before the window
    ch += [anc("3000000004", n, f"2026-0{n + 3}-01", B) for n in range(3, 6)]
    # --- deaths: an infant at B ------------------------------------------------------------
    ch.append(change(h, "death", "4000000001:d", {"health_id": "4000000001",
                     "death_date": "2026-10-08", "cause_icd10": "P21", "age_days": 3},
                     B, t(2026, 10, 8)))  # fmt: skip
    # --- hypertension register (A unless said) ---------------------------------------------
    hy = "hypertension"
    ch.append(enrol(h, "5000000001", hy, "2026-01-10", A, treatment_start_date="2026-01-10"))
    ch.append(visit(h, "5000000001", hy, "2026-09-05", A, bp=(150, 95)))
    ch.append(visit(h, "5000000001", hy, "2026-10-03", A, bp=(130, 80)))  # last: controlled
    ch.append(enrol(h, "5000000002", hy, "2025-06-01", A))
    ch.append(visit(h, "5000000002", hy, "2026-08-20", A, bp=(145, 85)))  # not controlled
    ch.append(enrol(h, "5000000003", hy, "2025-05-01", A, treatment_start_date="2025-05-01"))
    ch.append(visit(h, "5000000003", hy, "2025-09-01", A, bp=(120, 70)))  # > 12 months ago
    ch.append(enrol(h, "5000000004", hy, "2026-09-15", A))  # newer than 3 months
    ch.append(enrol(h, "5000000005", hy, "2026-10-02", A))  # new in October
    ch.append(enrol(h, "5000000006", hy, "2025-01-01", A, exit_reason="transferred_out",
                    exit_date="2026-06-01"))  # fmt: skip
    ch.append(enrol(h, "5000000007", hy, "2025-03-01", A))
    ch.append(change(h, "death", "5000000007:d", {"health_id": "5000000007",
                     "death_date": "2026-08-01", "cause_icd10": "I64", "age_years": 80},
                     A, t(2026, 8, 2)))  # fmt: skip
    ch.append(enrol(h, "5000000008", hy, "2026-02-01", B, treatment_start_date="2026-03-01"))
    ch.append(visit(h, "5000000008", hy, "2026-10-10", A, bp=(120, 70)))  # seen at A: for B
    # --- diabetes register (C) -------------------------------------------------------------
    ch.append(enrol(h, "6000000001", "diabetes", "2026-01-01", C))
    ch.append(visit(h, "6000000001", "diabetes", "2026-10-05", C, fasting_glucose_mmol_l=6.5))
    ch.append(enrol(h, "6000000002", "diabetes", "2026-02-01", C))
    ch.append(visit(h, "6000000002", "diabetes", "2026-09-10", C, fasting_glucose_mmol_l=7.5,
                    hba1c_percent=8.0))  # fmt: skip
    # --- notifiable diseases ---------------------------------------------------------------

    def case(hid: str, dis: str, onset: str, cls: str, station: str, entered: datetime) -> Any:
        data = {"health_id": hid, "disease": dis, "onset_date": onset, "classification": cls}
        return change(h, "disease_case", f"{hid}:c", data, station, entered)

    ch.append(case("7000000001", "DENGUE", "2026-10-03", "confirmed", A, t(2026, 10, 4)))
    ch.append(case("7000000002", "DENGUE", "2026-09-29", "probable", A, t(2026, 10, 2)))
    ch.append(case("7000000003", "MEASLES", "2026-10-04", "suspected", B, t(2026, 10, 5)))
    ch.append(case("7000000004", "HFMD", "2026-10-10", "confirmed", C, t(2026, 10, 11)))
    ch.append(change(h, "disease_case", "7000000004:c", None, C, t(2026, 10, 12), version=2,
                     op="delete"))  # fmt: skip
    ch.append(case("7000000005", "MEASLES", "2026-10-20", "confirmed", B, t(2026, 10, 21)))
    # --- resources ---------------------------------------------------------------------------
    ch.append(snap(h, "staff_snapshot", A, "2026-09", {"counts": staff(0)}))
    ch.append(snap(h, "staff_snapshot", A, "2026-10", {"counts": staff(1)}))
    ch.append(snap(h, "staff_snapshot", B, "2026-10", {"counts": staff(0, midwife=1)}))
    ch.append(snap(h, "staff_snapshot", C, "2026-09", {"counts": staff(2, ob=1)}))
    ch.append(snap(h, "bed_snapshot", A, "2026-10", {"beds_total": 5}))
    ch.append(snap(h, "bed_snapshot", B, "2026-10", {"beds_total": 3}))
    eq = [{"item": "BP_MONITOR", "quantity": 2, "working": 1},
          {"item": "STETHOSCOPE", "quantity": 3, "working": 3}]  # fmt: skip
    ch.append(snap(h, "equipment_snapshot", A, "2026-10", {"items": eq}))
    ecg = [{"item": "ECG", "quantity": 1, "working": 0}]
    ch.append(snap(h, "equipment_snapshot", B, "2026-10", {"items": ecg}))
    ecg_fixed = [{"item": "ECG", "quantity": 1, "working": 1}]
    ch.append(snap(h, "equipment_snapshot", B, "2026-10", {"items": ecg_fixed}, version=2))
    ch.append(snap(h, "stock_snapshot", A, "2026-10", {"items": [
        {"medicine": "ORS_SACHET", "on_hand": 0, "stock_out": True},
        {"medicine": "ZINC_20_TAB", "on_hand": 9, "stock_out": False}]}))  # fmt: skip
    ch.append(snap(h, "stock_snapshot", B, "2026-10", {"items": [
        {"medicine": "ORS_SACHET", "on_hand": 4, "stock_out": False}]}))  # fmt: skip
    # --- report submissions for October (completeness) ------------------------------------
    for station, entered in ((A, t(2026, 11, 3)), (A2, t(2026, 11, 20)), (B, t(2026, 11, 4))):
        ch.append(change(h, "report_submission", f"{station}:submission:2026-10",
                         {"period": "2026-10"}, station, entered))  # fmt: skip
    # history before the 2025 reorganisation: Lào Cai (10), now part of province 15
    ch.append(change(h, "encounter", "2000000001:old", {**enc, "encounter_date": "2025-03-03"},
                     OLD, t(2025, 3, 3)))  # fmt: skip
    return ch


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.default()


@pytest.fixture(scope="module")
def con(h: Hierarchy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    stores = Stores(tmp_path_factory.mktemp("indicators"), scenario(h))
    yield stores
    stores.close()


def rep(con: Stores, h: Hierarchy, kind: str, tier: str, unit: str | None, period: str,
        mode: str = "as-recorded", **kw: Any) -> Report:  # fmt: skip
    return con.report(h, kind, tier, unit, period, mode, **{"config": EXACT, **kw})


def parts(r: Report, code: str, unit: str | None = None) -> tuple[int | None, int | None]:
    return r.numerator(code, unit), r.denominator(code, unit)


@pytest.mark.parametrize("tier", ["national", "province"])
def test_health_october(con: Stores, h: Hierarchy, tier: str) -> None:
    """The same figures from the national (pseudonymised, coarsened birth dates) and the
    province (record-level) stores."""
    unit = None if tier == "national" else "01"
    r = rep(con, h, "health", tier, unit, "2026-10")
    code = unit or "VN"
    pop, infants = h.population(code, OCT), h.population(code, OCT, "under_1")
    hanoi = tier == "province"
    # k1 k2 k4 2000000001 2000000005 (+ k3 in HCMC); the dead and the November one are out
    assert parts(r, "health_record_coverage") == (5 if hanoi else 6, pop)
    assert parts(r, "outpatient_visits_per_capita") == (4, pop)  # e1 e2 e4 (corrected) e6
    assert parts(r, "fully_immunised_under_1") == (1, infants)  # k1
    assert parts(r, "measles_coverage") == (3, infants)  # k1 k2 k4
    assert r.value("measles_coverage") == pytest.approx(100 * 3 / infants * 12)  # 1 month
    assert parts(r, "hypertension_registered") == (6, None)
    assert parts(r, "hypertension_new_registrations") == (1, None)
    assert parts(r, "hypertension_on_treatment") == (3, 6)
    assert parts(r, "hypertension_lost_to_follow_up") == (1, 6)
    assert parts(r, "hypertension_followed_up") == (3, 4)
    assert parts(r, "hypertension_controlled") == (2, 4)
    diabetes = (2, None) if not hanoi else (0, None)
    assert parts(r, "diabetes_registered") == diabetes
    if not hanoi:
        assert parts(r, "diabetes_controlled") == (1, 2)
        assert parts(r, "diabetes_followed_up") == (2, 2)
    deliveries = 4 if not hanoi else 3
    assert parts(r, "facility_deliveries") == (deliveries - 1, deliveries)
    assert parts(r, "skilled_birth_attendance") == (deliveries - 1, deliveries)
    assert parts(r, "anc4") == (1, 3)
    assert parts(r, "low_birth_weight") == (1, 3)
    assert parts(r, "infant_mortality") == (1, 4)
    assert r.value("infant_mortality") == pytest.approx(250.0)
    assert parts(r, "incidence_all") == (2, pop)  # dengue A + measles B (suspected left out)
    assert parts(r, "incidence_dengue") == (1, pop)
    assert parts(r, "incidence_measles") == (1, pop)
    assert r.value("incidence_all") == pytest.approx(2 * 100_000 / pop)  # not annualised
    annual = rep(con, h, "health", tier, unit, "2026-10", annualise=True)
    assert annual.value("incidence_all") == pytest.approx(2 * 100_000 / pop * 12)
    assert annual.scaling_note(by_code("incidence_all")) == "annualised from 1 months"
    assert "not annualised" in r.scaling_note(by_code("outpatient_visits_per_capita"))


def test_service_month_attribution(con: Stores, h: Hierarchy) -> None:
    """A birth on the 31st entered on the 2nd counts in its birth month; a visit back-entered
    in December counts in October; a phone correction does not move a person record."""
    oct_ = rep(con, h, "health", "national", None, "2026-10")
    nov = rep(con, h, "health", "national", None, "2026-11")
    assert oct_.denominator("facility_deliveries") == 4
    assert nov.denominator("facility_deliveries") == 0
    sep = rep(con, h, "health", "national", None, "2026-09")
    # 2000000005 registered in September, phone corrected in October: still September's
    # k1 k2 k3 k4 and 2000000005; 2000000004 died in September
    assert sep.numerator("health_record_coverage") == 5
    assert sep.numerator("incidence_dengue") == 1  # onset 29 September, entered 2 October
    assert sep.numerator("outpatient_visits_per_capita") == 1


def test_district_breakdown_by_station(con: Stores, h: Hierarchy) -> None:
    r = rep(con, h, "health", "district", "KV001", "2026-10")
    assert [c for c, _ in r.children] == [A, A2, A3]
    assert parts(r, "anc4", A) == (1, 3)
    # as recorded, p2 and p3 (enrolled before July 2025) sit under the old district 001;
    # restated into the current structure they are KV001's
    assert parts(r, "hypertension_controlled", A) == (1, 1)
    restated = rep(con, h, "health", "district", "KV001", "2026-10", "current")
    assert parts(restated, "hypertension_controlled", A) == (1, 3)  # p1 of p1 p2 p3
    assert parts(r, "outpatient_visits_per_capita", A2) == (1, h.population(A2, OCT))
    assert parts(r, "anc4", A3) == (0, 0) and r.value("anc4", A3) is None
    b = rep(con, h, "health", "district", "KV002", "2026-10")
    assert parts(b, "hypertension_controlled", B) == (1, 1)  # seen at A, counted for B
    assert parts(b, "measles_coverage", B) == (1, h.population(B, OCT, "under_1"))


def test_resources_take_the_last_snapshot_in_the_period(con: Stores, h: Hierarchy) -> None:
    r = rep(con, h, "resources", "national", None, "2026-10")
    stations = len(h.stations_in("VN", OCT))
    assert parts(r, "stations_with_doctor") == (1, stations)  # over every station
    assert parts(r, "stations_with_midwife") == (1, stations)
    assert parts(r, "stations_with_doctor", "01") == (1, len(h.stations_in("01", OCT)))
    assert r.numerator("station_doctors_per_10000") == 1
    assert r.numerator("station_beds_per_10000") == 8
    assert parts(r, "equipment_working") == (5, 6)  # B's corrected version counts
    assert parts(r, "stations_with_stockout") == (1, 2)
    q3 = rep(con, h, "resources", "national", None, "2026-Q3")
    assert q3.numerator("stations_with_doctor") == 1  # A Sep: none; C Sep: 2
    year = rep(con, h, "resources", "national", None, "2026")
    assert year.numerator("station_doctors_per_10000") == 3  # A Oct 1 + C Sep 2 (not A Sep)
    assert year.numerator("stations_with_midwife") == 2  # B midwife, C OB/paed
    district = rep(con, h, "resources", "district", "KV001", "2026-10")
    assert parts(district, "stations_with_doctor", A) == (1, 1)
    assert parts(district, "stations_with_doctor", A3) == (0, 1)


def test_flows_sum_over_months(con: Stores, h: Hierarchy) -> None:
    q4 = rep(con, h, "health", "national", None, "2026-Q4")
    q3 = rep(con, h, "health", "national", None, "2026-Q3")
    year = rep(con, h, "health", "national", None, "2026")
    code = "outpatient_visits_per_capita"
    assert q3.numerator(code) == 1 and q4.numerator(code) == 4 and year.numerator(code) == 5
    assert rep(con, h, "health", "national", None, "2026-H2").numerator(code) == 5
    assert rep(con, h, "health", "national", None, "2026-9M").numerator(code) == 1
    assert q3.numerator("measles_coverage") == 1  # k3 in September
    infants = h.population("VN", date(2026, 9, 30), "under_1")
    assert q3.value("measles_coverage") == pytest.approx(100 * 1 / infants * 4)  # 3 months
    assert q4.numerator("measles_coverage") == 3
    assert year.value(code) == pytest.approx(5 / h.population("VN", date(2026, 12, 31)))


def test_completeness_counts_submissions(con: Stores, h: Hierarchy) -> None:
    r = rep(con, h, "completeness", "district", "KV001", "2026-10")
    assert parts(r, "reporting_completeness") == (2, 3)  # A and A2 of three stations
    assert parts(r, "ontime_station") == (1, 3)  # A2 submitted on 20 November
    assert parts(r, "reporting_completeness", A3) == (0, 1)
    assert parts(r, "reports_approved") == (0, 3)  # nobody approved yet
    p = rep(con, h, "completeness", "province", "01", "2026-10")
    n_st = len(h.stations_in("01", OCT))
    assert parts(p, "reporting_completeness") == (3, n_st)
    assert parts(p, "ontime_station") == (2, n_st)
    assert parts(p, "ontime_district") == (0, len(h.children("01", OCT)))  # none approved
    n = rep(con, h, "completeness", "national", None, "2026-10")
    assert parts(n, "ontime_province") == (0, 34)


def test_restating_history_into_the_current_structure(con: Stores, h: Hierarchy) -> None:
    code = "outpatient_visits_per_capita"
    recorded = rep(con, h, "health", "national", None, "2025-Q1")
    assert recorded.numerator(code, "10") == 1
    assert recorded.denominator(code, "10") == h.population("10", date(2025, 3, 31))
    current = rep(con, h, "health", "national", None, "2025-Q1", "current")
    assert current.numerator(code, "15") == 1
    assert all(c != "10" for c, _ in current.children)
    successor = h.successor_station(OLD, date(2025, 7, 1))
    assert successor is not None  # the commune it merged into (NSO table), not a centre
    district = h.lookup(successor, date(2025, 7, 1)).district.code
    p15 = rep(con, h, "health", "province", "15", "2025-Q1", "current")
    assert p15.numerator(code, district) == 1
    d = rep(con, h, "health", "district", district, "2025-Q1", "current")
    assert d.numerator(code, successor) == 1
    assert sum(c.denominator or 0 for c in d.child_cells(code)) == d.denominator(code)


def test_value_is_divided_last() -> None:
    ind = by_code("facility_deliveries")
    assert ind.value(3, 4) == 75.0
    assert ind.value(0, 0) is None
    assert by_code("hypertension_registered").value(7, None) == 7.0


def test_a_provinces_own_population_table_replaces_the_estimates(
    con: Stores, h: Hierarchy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from schemas.hierarchy.io import read_population

    table = tmp_path_factory.mktemp("population") / "hanoi-2026.csv"
    table.write_text(
        "code,valid_from,valid_to,population,under_1\n"
        f"{A},2026-01-01,2027-01-01,30000,400\n"
        f"{A2},2026-01-01,2027-01-01,20000,300\n",
        encoding="utf-8",
    )
    own = h.with_population(read_population(table))
    assert own.population(A, OCT) == 30000 and own.population(A, OCT, "under_1") == 400
    assert own.population(A3, OCT) == h.population(A3, OCT)  # the others keep the estimate
    r = con.report(own, "health", "district", "KV001", "2026-10")
    assert r.denominator("outpatient_visits_per_capita", A) == 30000
    assert r.denominator("measles_coverage", A2) == 300
    assert r.denominator("outpatient_visits_per_capita") == 50000 + h.population(A3, OCT)
    assert "2 station(s) from an official table" in own.population_basis(OCT)
    assert "scaled to 2026-07-01" in own.population_basis(OCT)
