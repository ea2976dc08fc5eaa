"""Upcasters: turn a payload of an older major into the current major, step by step.

Both majors are accepted on ingest; the validator verifies the signature over the data *as
sent*, then calls :func:`upcast` so everything downstream sees only current majors.

Shipped evolutions:

- ``encounter`` v1 → v2 moves ``vitals.systolic_bp_mmhg`` / ``vitals.diastolic_bp_mmhg`` into
  ``vitals.blood_pressure = {systolic_mmhg, diastolic_mmhg}``;
- ``chronic_followup`` v1 → v2 does the same inside ``measurements`` and drops the yes/no
  ``controlled`` flag and ``newly_diagnosed`` (control is computed from the measurements; the
  register is ``chronic_enrolment``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas.reasons import ContractViolation, Reason
from schemas.registry import CURRENT_MAJOR, MODELS, RecordType, record_type_of

Data = dict[str, Any]


def _nest_blood_pressure(values: Data) -> Data:
    """``{systolic_bp_mmhg, diastolic_bp_mmhg, …}`` → ``{blood_pressure: {…}, …}``."""
    v = dict(values)
    sys_ = v.pop("systolic_bp_mmhg", None)
    dia = v.pop("diastolic_bp_mmhg", None)
    if sys_ is not None or dia is not None:
        v["blood_pressure"] = {"systolic_mmhg": sys_, "diastolic_mmhg": dia}
    return v


def _encounter_v1_to_v2(data: Data) -> Data:
    out = dict(data)
    vitals = data.get("vitals")
    if isinstance(vitals, dict):
        out["vitals"] = _nest_blood_pressure(vitals)
    return out


def _chronic_followup_v1_to_v2(data: Data) -> Data:
    out = {k: v for k, v in data.items() if k not in ("controlled", "newly_diagnosed")}
    measurements = data.get("measurements")
    if isinstance(measurements, dict):
        out["measurements"] = _nest_blood_pressure(measurements)
    return out


# (record type, from major) -> function producing from major + 1
UPCASTERS: Final[dict[tuple[RecordType, int], Callable[[Data], Data]]] = {
    (RecordType.ENCOUNTER, 1): _encounter_v1_to_v2,
    (RecordType.CHRONIC_FOLLOWUP, 1): _chronic_followup_v1_to_v2,
}


def upcast(record_type: str, major: int, data: Data) -> tuple[int, Data]:
    """``(current major, data at the current major)``. ``data`` is not modified.

    Raises ``ContractViolation(unknown_schema_major)`` for a major that is not accepted.
    """
    rt = record_type_of(record_type)
    if major not in MODELS[rt]:
        raise ContractViolation(
            Reason.UNKNOWN_SCHEMA_MAJOR, f"{rt} has no major v{major}", field="dataschema"
        )
    current = CURRENT_MAJOR[rt]
    while major < current:
        data = UPCASTERS[(rt, major)](data)
        major += 1
    return major, data
