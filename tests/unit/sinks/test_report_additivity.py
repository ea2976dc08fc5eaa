"""Property: a parent's numerator and denominator are the sums of its children's, and a
unit's own report equals its cell in its parent's breakdown (aggregate first, divide last)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.hierarchy import Hierarchy
from sinks.reports import Report
from tests.report_store import Stores, change
from tests.unit.sinks.test_report_indicators import person, snap, staff, t

H = Hierarchy.default()
STATIONS = ["00004", "00008", "00070", "25747", "25750"]

record = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [
                "encounter",
                "birth",
                "death",
                "case",
                "chronic",
                "staff",
                "equipment",
                "stock",
                "anc",
                "child",
                "submission",
            ]
        ),
        "station": st.sampled_from(STATIONS),
        "month": st.integers(7, 12),
        "day": st.integers(1, 28),
        "flag": st.booleans(),
        "n": st.integers(0, 4),
        "delay_days": st.sampled_from([0, 0, 3, 12, 30]),
        "deleted": st.booleans(),
    }
)


def build(recs: list[dict[str, Any]], root: Path) -> Stores:
    changes = []
    for i, r in enumerate(recs):
        when = t(2026, r["month"], r["day"])
        on = when.date().isoformat()
        hid = f"{7000000000 + i}"
        kw: dict[str, Any] = {"received_time": when + timedelta(days=r["delay_days"])}
        data: dict[str, Any]
        st_ = r["station"]
        period = f"2026-{r['month']:02d}"
        entered = when + timedelta(days=r["delay_days"])  # service date ≠ entry date
        k = r["kind"]
        if k == "encounter":
            typ = "outpatient" if r["flag"] else "inpatient"
            data = {"health_id": hid, "encounter_date": on, "diagnoses": ["J06"],
                    "encounter_type": typ}  # fmt: skip
            changes.append(change(H, "encounter", f"{hid}:e", data, st_, entered, **kw))
        elif k == "birth":
            data = {"mother_health_id": hid, "birth_date": on,
                    "place": "facility" if r["flag"] else "home", "attendant": "midwife",
                    "live_birth": r["n"] > 0, "weight_grams": 2000 + 300 * r["n"]}  # fmt: skip
            changes.append(change(H, "birth", f"{hid}:b", data, st_, entered, **kw))
        elif k == "anc":
            data = {"health_id": f"{7000000000 + i - 1}", "visit_number": r["n"] + 1,
                    "gestational_weeks": 20, "visit_date": on}  # fmt: skip
            changes.append(change(H, "antenatal_visit", f"{hid}:a", data, st_, entered, **kw))
        elif k == "death":
            age: dict[str, Any] = {"age_days": 3} if r["flag"] else {"age_years": 60}
            data = {"health_id": hid, "death_date": on, "cause_icd10": "R99", **age}
            changes.append(change(H, "death", f"{hid}:d", data, st_, entered, **kw))
        elif k == "case":
            data = {"health_id": hid, "disease": ["DENGUE", "HFMD", "MEASLES"][r["n"] % 3],
                    "onset_date": on, "classification": "confirmed"}  # fmt: skip
            changes.append(change(H, "disease_case", f"{hid}:c", data, st_, entered, **kw))
        elif k == "chronic":
            patient = f"{7100000000 + r['n']}"
            cond = "hypertension" if r["n"] % 2 else "diabetes"
            enrolled = t(2026, 1, 1 + r["n"]).date().isoformat()
            data = {"health_id": patient, "condition": cond, "enrolment_date": enrolled}
            changes.append(change(H, "chronic_enrolment", f"{patient}:{cond}:{st_}", data, st_,
                                  t(2026, 1, 1 + r["n"])))  # fmt: skip
            bp = {"systolic_mmhg": 130 if r["flag"] else 150, "diastolic_mmhg": 80}
            m = {"blood_pressure": bp} if cond == "hypertension" else {"hba1c_percent": 6.5}
            data = {"health_id": patient, "condition": cond, "visit_date": on, "measurements": m}
            changes.append(change(H, "chronic_followup", f"{hid}:f", data, st_, entered, **kw))
        elif k == "child":
            born = f"2025-{r['month']:02d}-01"
            changes.append(change(H, "person", hid, person(hid, born, born), st_,
                                  when - timedelta(days=330), **kw))  # fmt: skip
            data = {"health_id": hid, "vaccine": "MEASLES", "dose_number": 1, "date": on}
            changes.append(change(H, "immunization", f"{hid}:m", data, st_, entered, **kw))
        elif k == "submission":
            data = {"period": period}
            sent = when + timedelta(days=20 + r["delay_days"])
            rid = f"{st_}:submission:{period}"
            changes.append(change(H, "report_submission", rid, data, st_, sent, **kw))
        elif k == "staff":
            counts = {"counts": staff(r["n"], midwife=int(r["flag"]))}
            changes.append(snap(H, "staff_snapshot", st_, period, counts, **kw))
        elif k == "equipment":
            items = [{"item": "ECG", "quantity": r["n"] + 1, "working": r["n"]}]
            changes.append(snap(H, "equipment_snapshot", st_, period, {"items": items}, **kw))
        else:
            items = [{"medicine": "ORS_SACHET", "on_hand": r["n"], "stock_out": r["n"] == 0}]
            changes.append(snap(H, "stock_snapshot", st_, period, {"items": items}, **kw))
        if r["deleted"] and k in {"encounter", "case"}:
            last = changes[-1]
            gone = entered + timedelta(hours=1)
            rt, rid = last["record_type"], last["record_id"]
            changes.append(change(H, rt, rid, None, st_, gone, version=2, op="delete"))
    return Stores(root, _unique(changes))


def _unique(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One version 1 per record (generated registers and submissions may repeat)."""
    seen: set[tuple[str, str, int]] = set()
    out = []
    for c in changes:
        key = (c["record_type"], c["record_id"], c["record_version"])
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def assert_additive(report: Report) -> None:
    for ind in report.indicators:
        unit = report.cell(ind.code)
        kids = report.child_cells(ind.code)
        assert unit.numerator == sum(c.numerator or 0 for c in kids), ind.code
        if ind.denominator_source != "none":
            assert unit.denominator == sum(c.denominator or 0 for c in kids), ind.code


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(record, min_size=1, max_size=25), st.sampled_from(["2026-Q4", "2026-H2", "2026-11"])
)
def test_parents_sum_their_children(recs: list[dict[str, Any]], period: str) -> None:
    with tempfile.TemporaryDirectory(prefix="additivity-") as tmp:
        stores = build(recs, Path(tmp))
        try:
            _check(stores, period)
        finally:
            stores.close()


def _check(stores: Stores, period: str) -> None:
    for kind in ("health", "resources", "completeness"):
        national = stores.report(H, kind, "national", None, period)
        assert_additive(national)
        province = stores.report(H, kind, "province", "01", period)
        assert_additive(province)
        district = stores.report(H, kind, "district", "KV001", period)
        assert_additive(district)
        for ind in province.indicators:
            assert national.numerator(ind.code, "01") == province.numerator(ind.code)
            assert national.denominator(ind.code, "01") == province.denominator(ind.code)
        for ind in district.indicators:
            assert province.numerator(ind.code, "KV001") == district.numerator(ind.code)
            assert province.denominator(ind.code, "KV001") == district.denominator(ind.code)
