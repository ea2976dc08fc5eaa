"""Indicator maths on a hand-made catalog: every numerator and denominator checked by hand."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb
import pytest

from schemas.hierarchy import VN_TZ, Hierarchy
from sinks.reports import Report, ReportConfig, by_code, run_report
from sinks.reports.memcatalog import build_catalog, change

A, A2, A3 = "00004", "00008", "00025"  # KV001, Hà Nội (01)
B = "00070"  # KV002, Hà Nội
C = "25747"  # KV718, Hồ Chí Minh (79)
OLD = "02635"  # Lào Cai (10) before 2025-07-01, restated to KV080 in province 15

#: the indicator maths, unsuppressed (national reports suppress small cells by default)
EXACT = ReportConfig(suppression_threshold=1)


def t(y: int, m: int, d: int, hh: int = 9) -> datetime:
    return datetime(y, m, d, hh, tzinfo=VN_TZ)


def person(hid: str, birth: str) -> dict[str, Any]:
    return {
        "health_id": hid,
        "full_name": "N",
        "sex": "female",
        "birth_date": birth,
        "ethnicity": "01",
        "residence_commune": A,
    }


FULL = {"BCG": 1, "HEPB_BIRTH": 1, "DTP_HEPB_HIB": 3, "OPV": 3, "IPV": 1, "MEASLES": 1}


def doses(h: Hierarchy, hid: str, station: str, when: datetime, skip: str = "") -> list[Any]:
    return [
        change(
            h,
            "immunization",
            f"{hid}:{vac}",
            {"health_id": hid, "vaccine": vac, "dose_number": n, "date": when.date().isoformat()},
            station,
            when,
        )
        for vac, n in FULL.items()
        if vac != skip
    ]


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


def scenario(h: Hierarchy) -> list[dict[str, Any]]:
    oct_ = t(2026, 10, 10)
    late = t(2026, 11, 20)
    ch: list[dict[str, Any]] = []
    # persons: kid1 fully immunised by month 11; kid2 lacks OPV; kid3's IPV in month 12
    ch.append(
        change(h, "person", "1000000001", person("1000000001", "2025-10-05"), A, t(2025, 10, 6))
    )
    ch.append(
        change(h, "person", "1000000002", person("1000000002", "2025-10-20"), A, t(2025, 10, 21))
    )
    ch.append(
        change(h, "person", "1000000003", person("1000000003", "2025-10-01"), C, t(2025, 10, 2))
    )
    ch += doses(h, "1000000001", A, t(2026, 9, 1))
    ch += doses(h, "1000000002", A, t(2026, 9, 1), skip="OPV")
    ch += doses(h, "1000000003", C, t(2026, 9, 1), skip="IPV")
    ch.append(
        change(
            h,
            "immunization",
            "1000000003:IPV",
            {"health_id": "1000000003", "vaccine": "IPV", "dose_number": 1, "date": "2026-10-02"},
            C,
            t(2026, 10, 2),
        )
    )
    # kid4 (born 2026-01) gets MCV1 in October at B: an infant dose
    ch.append(
        change(h, "person", "1000000004", person("1000000004", "2026-01-15"), B, t(2026, 1, 16))
    )
    ch.append(
        change(
            h,
            "immunization",
            "1000000004:M",
            {
                "health_id": "1000000004",
                "vaccine": "MEASLES",
                "dose_number": 1,
                "date": "2026-10-03",
            },
            B,
            t(2026, 10, 3),
        )
    )
    # adults: one registered in October at B, one deleted, one registered in November
    ch.append(change(h, "person", "2000000001", person("2000000001", "1980-01-01"), B, oct_))
    ch.append(change(h, "person", "2000000002", person("2000000002", "1980-01-01"), B, oct_))
    ch.append(change(h, "person", "2000000002", None, B, t(2026, 10, 11), version=2, op="delete"))
    ch.append(
        change(h, "person", "2000000003", person("2000000003", "1980-01-01"), B, t(2026, 11, 2))
    )
    # encounters: A 2 outpatient + 1 inpatient; B corrected inpatient -> outpatient; C in September
    enc = {"health_id": "2000000001", "encounter_date": "2026-10-10", "diagnoses": ["J06"]}
    ch.append(change(h, "encounter", "2000000001:e1", enc, A, oct_))
    ch.append(change(h, "encounter", "2000000001:e2", enc, A, oct_))
    ch.append(
        change(h, "encounter", "2000000001:e3", {**enc, "encounter_type": "inpatient"}, A, oct_)
    )
    ch.append(
        change(h, "encounter", "2000000001:e4", {**enc, "encounter_type": "inpatient"}, B, oct_)
    )
    ch.append(change(h, "encounter", "2000000001:e4", enc, B, t(2026, 10, 12), version=2))
    ch.append(change(h, "encounter", "2000000001:e5", enc, C, t(2026, 9, 10)))
    # a late station in KV001: A2's only October data arrives on 20 November
    ch.append(change(h, "encounter", "2000000001:e6", enc, A2, oct_, received_time=late))

    def birth(mid: str, place: str, live: bool, bd: str) -> dict[str, Any]:
        return {"mother_health_id": mid, "birth_date": bd, "place": place,
                "attendant": "midwife", "live_birth": live}  # fmt: skip

    ch.append(
        change(
            h, "birth", "3000000001:b", birth("3000000001", "facility", True, "2026-10-10"), A, oct_
        )
    )
    ch.append(
        change(h, "birth", "3000000002:b", birth("3000000002", "home", True, "2026-10-12"), A, oct_)
    )
    ch.append(
        change(
            h,
            "birth",
            "3000000003:b",
            birth("3000000003", "facility", False, "2026-10-09"),
            B,
            oct_,
        )
    )
    ch.append(
        change(
            h, "birth", "3000000004:b", birth("3000000004", "facility", True, "2026-10-01"), C, oct_
        )
    )

    def anc(mid: str, n: int, day: str, station: str) -> dict[str, Any]:
        data = {"health_id": mid, "visit_number": n, "gestational_weeks": 10 + 6 * n,
                "visit_date": day}  # fmt: skip
        return change(
            h, "antenatal_visit", f"{mid}:v{n}", data, station, t(*map(int, day.split("-")))
        )

    ch += [anc("3000000001", n, f"2026-0{n + 3}-01", A) for n in range(1, 5)]
    ch += [anc("3000000002", n, f"2026-0{n + 3}-01", A) for n in range(1, 4)]
    ch.append(anc("3000000003", 1, "2025-01-05", B))  # more than 300 days before the birth
    ch += [anc("3000000003", n, f"2026-0{n + 2}-01", B) for n in range(2, 6)]
    # deaths: an infant at A, an adult at C
    ch.append(
        change(
            h,
            "death",
            "4000000001:d",
            {
                "health_id": "4000000001",
                "death_date": "2026-10-05",
                "cause_icd10": "P21",
                "age_days": 10,
            },
            A,
            oct_,
        )
    )
    ch.append(
        change(
            h,
            "death",
            "4000000002:d",
            {
                "health_id": "4000000002",
                "death_date": "2026-10-05",
                "cause_icd10": "I21",
                "age_years": 70,
            },
            C,
            oct_,
        )
    )

    # chronic follow-ups: the latest in the period decides "controlled"
    def fu(hid: str, cond: str, day: str, ok: bool, station: str, local: str) -> Any:
        data = {"health_id": hid, "condition": cond, "visit_date": day, "controlled": ok}
        return change(
            h, "chronic_followup", f"{hid}:{local}", data, station, t(*map(int, day.split("-")))
        )

    ch.append(fu("5000000001", "hypertension", "2026-10-20", True, A, "f2"))
    ch.append(fu("5000000001", "hypertension", "2026-10-02", False, A, "f1"))
    ch.append(fu("5000000002", "hypertension", "2026-10-03", False, A, "f1"))
    ch.append(fu("5000000001", "hypertension", "2026-10-04", True, B, "f3"))
    ch.append(fu("5000000003", "diabetes", "2026-10-05", True, B, "f1"))
    # notifiable disease cases: 2 dengue at A, 1 measles at C, a deleted dengue at B
    for i, (dis, st) in enumerate([("DENGUE", A), ("DENGUE", A), ("MEASLES", C), ("DENGUE", B)]):
        ch.append(
            change(
                h,
                "disease_case",
                f"600000000{i}:c",
                {"health_id": f"600000000{i}", "disease": dis, "onset_date": "2026-10-01"},
                st,
                oct_,
            )
        )
    ch.append(
        change(h, "disease_case", "6000000003:c", None, B, t(2026, 10, 12), version=2, op="delete")
    )
    # resources
    ch.append(snap(h, "staff_snapshot", A, "2026-09", {"counts": staff(0)}))
    ch.append(snap(h, "staff_snapshot", A, "2026-10", {"counts": staff(1)}))
    ch.append(snap(h, "staff_snapshot", B, "2026-10", {"counts": staff(0, midwife=1)}))
    ch.append(snap(h, "staff_snapshot", C, "2026-09", {"counts": staff(2, ob=1)}))
    ch.append(snap(h, "bed_snapshot", A, "2026-10", {"beds_total": 5}))
    ch.append(snap(h, "bed_snapshot", B, "2026-10", {"beds_total": 3}))
    eq = [{"item": "BP_MONITOR", "quantity": 2, "working": 1},
          {"item": "STETHOSCOPE", "quantity": 3, "working": 3}]  # fmt: skip
    ch.append(snap(h, "equipment_snapshot", A, "2026-10", {"items": eq}))
    ch.append(
        snap(
            h,
            "equipment_snapshot",
            B,
            "2026-10",
            {"items": [{"item": "ECG", "quantity": 1, "working": 0}]},
        )
    )
    ch.append(
        snap(
            h,
            "equipment_snapshot",
            B,
            "2026-10",
            {"items": [{"item": "ECG", "quantity": 1, "working": 1}]},
            version=2,
        )
    )
    ch.append(snap(h, "stock_snapshot", A, "2026-10", {"items": [
        {"medicine": "ORS_SACHET", "on_hand": 0, "stock_out": True},
        {"medicine": "ZINC_20_TAB", "on_hand": 9, "stock_out": False}]}))  # fmt: skip
    ch.append(snap(h, "stock_snapshot", B, "2026-10", {"items": [
        {"medicine": "ORS_SACHET", "on_hand": 4, "stock_out": False}]}))  # fmt: skip
    # history before the 2025 reorganisation: Lào Cai (10), now part of province 15
    ch.append(change(h, "encounter", "2000000001:old", enc, OLD, t(2025, 3, 3)))
    return ch


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.default()


@pytest.fixture(scope="module")
def con(h: Hierarchy) -> duckdb.DuckDBPyConnection:
    return build_catalog(duckdb.connect(), scenario(h))


def rep(con: Any, h: Hierarchy, kind: str, tier: str, unit: str | None, period: str,
        mode: str = "as-recorded") -> Report:  # fmt: skip
    return run_report(con, h, kind, tier, unit, period, mode, "national", config=EXACT)


def parts(r: Report, code: str, unit: str | None = None) -> tuple[int | None, int | None]:
    return r.numerator(code, unit), r.denominator(code, unit)


def test_health_national_october(con: Any, h: Hierarchy) -> None:
    r = rep(con, h, "health", "national", None, "2026-10")
    pop = h.population("VN", date(2026, 10, 31))
    assert parts(r, "health_record_coverage") == (5, pop)  # 4 kids + 1 adult
    assert parts(r, "outpatient_visits_per_capita") == (4, pop)  # A 2, B 1 (corrected), A2 1
    assert parts(r, "fully_immunised_under_1") == (1, 3)
    assert parts(r, "measles_coverage") == (1, 3)
    assert parts(r, "facility_births") == (3, 4)
    assert parts(r, "infant_mortality") == (1, 3)
    assert r.value("infant_mortality") == pytest.approx(1000 / 3)
    assert parts(r, "anc4") == (2, 4)
    assert parts(r, "hypertension_managed") == (3, None)
    assert r.value("hypertension_managed") == 3
    assert parts(r, "hypertension_controlled") == (2, 3)
    assert parts(r, "diabetes_controlled") == (1, 1)
    assert parts(r, "incidence_all") == (3, pop)
    assert parts(r, "incidence_dengue") == (2, pop)
    assert parts(r, "incidence_measles") == (1, pop)
    assert r.value("incidence_all") == pytest.approx(3 * 100_000 / pop)
    # breakdown: Hà Nội and HCMC, each with the population of its own
    assert parts(r, "facility_births", "01") == (2, 3)
    assert parts(r, "facility_births", "79") == (1, 1)
    assert r.denominator("health_record_coverage", "79") == h.population("79", date(2026, 10, 31))
    assert len(r.children) == 34


def test_health_district_breakdown_by_station(con: Any, h: Hierarchy) -> None:
    r = rep(con, h, "health", "district", "KV001", "2026-10")
    assert [c for c, _ in r.children] == [A, A2, A3]
    assert parts(r, "anc4", A) == (1, 2)
    assert parts(r, "hypertension_controlled", A) == (1, 2)
    assert parts(r, "outpatient_visits_per_capita", A2) == (1, h.population(A2, date(2026, 10, 31)))
    assert parts(r, "anc4", A3) == (0, 0) and r.value("anc4", A3) is None


def test_resources_take_the_last_snapshot_in_the_period(con: Any, h: Hierarchy) -> None:
    r = rep(con, h, "resources", "national", None, "2026-10")
    assert parts(r, "stations_with_doctor") == (1, 2)
    assert parts(r, "stations_with_midwife") == (1, 2)
    assert r.numerator("doctors_per_10000") == 1
    assert r.numerator("beds_per_10000") == 8
    assert parts(r, "equipment_working") == (5, 6)  # B's corrected version counts
    assert parts(r, "stations_with_stockout") == (1, 2)
    q3 = rep(con, h, "resources", "national", None, "2026-Q3")
    assert parts(q3, "stations_with_doctor") == (1, 2)  # A Sep: none; C Sep: 2
    year = rep(con, h, "resources", "national", None, "2026")
    assert year.numerator("doctors_per_10000") == 3  # A Oct 1 + C Sep 2 (not A Sep)
    assert parts(year, "stations_with_midwife") == (2, 3)  # B midwife, C OB/paed


def test_flows_sum_over_months(con: Any, h: Hierarchy) -> None:
    q4 = rep(con, h, "health", "national", None, "2026-Q4")
    q3 = rep(con, h, "health", "national", None, "2026-Q3")
    year = rep(con, h, "health", "national", None, "2026")
    code = "outpatient_visits_per_capita"
    assert q3.numerator(code) == 1 and q4.numerator(code) == 4
    assert year.numerator(code) == 5
    assert rep(con, h, "health", "national", None, "2026-H2").numerator(code) == 5
    assert rep(con, h, "health", "national", None, "2026-9M").numerator(code) == 1
    # kids 1-3 (born 2025-10) got MCV1 on 2026-09-01, month 11 of life: infant doses
    assert q3.numerator("measles_coverage") == 3
    assert q4.numerator("measles_coverage") == 1  # kid4 in October


def test_completeness_and_timeliness(con: Any, h: Hierarchy) -> None:
    r = rep(con, h, "completeness", "district", "KV001", "2026-10")
    assert parts(r, "reporting_completeness") == (2, 3)  # A and A2 of three stations
    assert parts(r, "ontime_station") == (1, 3)  # A2's data came 20 November
    assert parts(r, "reporting_completeness", A3) == (0, 1)
    assert {i.code for i in r.indicators} == {"reporting_completeness", "ontime_station"}
    p = rep(con, h, "completeness", "province", "01", "2026-10")
    n_st = len(h.stations_in("01", date(2026, 10, 31)))
    assert parts(p, "reporting_completeness") == (3, n_st)
    assert parts(p, "ontime_station") == (2, n_st)
    # districts: KV001 has a late arrival (20 Nov is within 15 working days), KV002 on time
    assert parts(p, "ontime_district") == (2, len(h.children("01", date(2026, 10, 31))))
    n = rep(con, h, "completeness", "national", None, "2026-10")
    assert parts(n, "ontime_province", "01") == (1, 1)
    assert parts(n, "ontime_province", "79") == (1, 1)
    assert n.denominator("ontime_province") == 34


def test_restating_history_into_the_current_structure(con: Any, h: Hierarchy) -> None:
    code = "outpatient_visits_per_capita"
    recorded = rep(con, h, "health", "national", None, "2025-Q1")
    assert recorded.numerator(code, "10") == 1
    assert recorded.denominator(code, "10") == h.population("10", date(2025, 3, 31))
    current = rep(con, h, "health", "national", None, "2025-Q1", "current")
    assert current.numerator(code, "15") == 1
    assert ("10", recorded.unit_name) not in current.children
    assert all(c != "10" for c, _ in current.children)
    p15 = rep(con, h, "health", "province", "15", "2025-Q1", "current")
    assert p15.numerator(code, "KV080") == 1


def test_value_is_divided_last() -> None:
    ind = by_code("facility_births")
    assert ind.value(3, 4) == 75.0
    assert ind.value(0, 0) is None
    assert by_code("hypertension_managed").value(7, None) == 7.0
