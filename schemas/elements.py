"""Data elements: the additive counters one record contributes to, per station and period.

A data element is a named count (``encounters.outpatient``, ``births.facility``,
``staff.doctor`` …). Each record's *current* state contributes a small dict of element →
value to one (station, period). Flows (visits, doses, cases) sum over months and up the
tree; snapshots (staff, beds, equipment, stock) are keyed by their period, one record per
station and month, so the latest version is the month's value and the tree sums it.

The live aggregator adds a new version's contributions and subtracts the previous
version's (a delete subtracts and adds nothing), so live counters always equal a
recomputation from final record states with this same function. Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas import codes
from schemas.service import service_month

__all__ = [
    "FLOW_PREFIXES",
    "SNAPSHOT_PREFIXES",
    "contribution_period",
    "contributions",
    "measured_controlled",
]

FLOW_PREFIXES: tuple[str, ...] = (
    "persons.",
    "encounters.",
    "immunization.",
    "chronic.",
    "anc.",
    "births.",
    "deaths.",
    "cases.",
    "reports.",
)
SNAPSHOT_PREFIXES = ("staff.", "beds.", "equipment.", "stock.")


def contribution_period(record_type: str, data: Mapping[str, Any], event_period: str) -> str:
    """The month (YYYY-MM) a record counts in: the month of its service date
    (``schemas.service``: the visit, dose, delivery, death, onset, snapshot period …), the
    same month the reports count it in; ``event_period`` when the payload has no date."""
    return service_month(record_type, data, event_period)


def contributions(record_type: str, data: Mapping[str, Any] | None) -> dict[str, int]:
    """Element → value for one record's after-image (current major); {} for a delete."""
    if data is None:
        return {}
    fn = _BY_TYPE.get(record_type)
    return fn(data) if fn else {}


def _person(d: Mapping[str, Any]) -> dict[str, int]:
    return {"persons.registered": 1}


def _encounter(d: Mapping[str, Any]) -> dict[str, int]:
    out = {"encounters.total": 1}
    if d.get("encounter_type", "outpatient") == "outpatient":
        out["encounters.outpatient"] = 1
    if d.get("referral"):
        out["encounters.referred"] = 1
    return out


def _immunization(d: Mapping[str, Any]) -> dict[str, int]:
    return {"immunization.doses": 1, f"immunization.doses.{d['vaccine']}": 1}


def measured_controlled(condition: str, measurements: Mapping[str, Any] | None) -> bool | None:
    """Control at one visit from its measurements (``codes``: WHO HEARTS thresholds);
    ``None`` when the visit measured nothing that decides it."""
    m = measurements or {}
    if condition == "hypertension":
        bp = m.get("blood_pressure")
        if not bp:
            return None
        sys_max, dia_max = codes.BP_CONTROLLED_BELOW
        return bool(bp["systolic_mmhg"] < sys_max and bp["diastolic_mmhg"] < dia_max)
    fbg, a1c = m.get("fasting_glucose_mmol_l"), m.get("hba1c_percent")
    if fbg is None and a1c is None:
        return None
    return bool(
        (fbg is not None and fbg < codes.FASTING_GLUCOSE_CONTROLLED_BELOW)
        or (a1c is not None and a1c < codes.HBA1C_CONTROLLED_BELOW)
    )


def _chronic(d: Mapping[str, Any]) -> dict[str, int]:
    cond = d["condition"]
    out = {f"chronic.followups.{cond}": 1}
    if measured_controlled(cond, d.get("measurements")):
        out[f"chronic.followups.{cond}.controlled"] = 1
    return out


def _enrolment(d: Mapping[str, Any]) -> dict[str, int]:
    return {f"chronic.enrolled.{d['condition']}": 1}


def _submission(d: Mapping[str, Any]) -> dict[str, int]:
    return {"reports.submitted": 1}


def _antenatal(d: Mapping[str, Any]) -> dict[str, int]:
    out = {"anc.visits": 1}
    if d.get("visit_number") == 4:
        out["anc.fourth_visits"] = 1
    return out


def _birth(d: Mapping[str, Any]) -> dict[str, int]:
    out = {"births.total": 1}
    if d.get("live_birth"):
        out["births.live"] = 1
    if d.get("place") == "facility":
        out["births.facility"] = 1
    return out


def _death(d: Mapping[str, Any]) -> dict[str, int]:
    out = {"deaths.total": 1}
    if d.get("age_days") is not None or d.get("age_years") == 0:
        out["deaths.infant"] = 1
    return out


def _case(d: Mapping[str, Any]) -> dict[str, int]:
    return {"cases.total": 1, f"cases.{d['disease']}": 1}


def _staff(d: Mapping[str, Any]) -> dict[str, int]:
    return {f"staff.{cadre}": int(n) for cadre, n in d["counts"].items()}


def _beds(d: Mapping[str, Any]) -> dict[str, int]:
    return {"beds.total": int(d["beds_total"])}


def _equipment(d: Mapping[str, Any]) -> dict[str, int]:
    items = d.get("items", [])
    return {
        "equipment.total": sum(int(i["quantity"]) for i in items),
        "equipment.working": sum(int(i["working"]) for i in items),
    }


def _stock(d: Mapping[str, Any]) -> dict[str, int]:
    items = d.get("items", [])
    return {
        "stock.items": len(items),
        "stock.stockouts": sum(1 for i in items if i.get("stock_out")),
    }


_BY_TYPE = {
    "person": _person,
    "encounter": _encounter,
    "immunization": _immunization,
    "chronic_followup": _chronic,
    "antenatal_visit": _antenatal,
    "birth": _birth,
    "death": _death,
    "disease_case": _case,
    "staff_snapshot": _staff,
    "bed_snapshot": _beds,
    "equipment_snapshot": _equipment,
    "stock_snapshot": _stock,
    "chronic_enrolment": _enrolment,
    "report_submission": _submission,
}
