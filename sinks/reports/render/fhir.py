"""FHIR R4 MeasureReport JSON: one per indicator and unit, in a collection Bundle.

Each MeasureReport is ``type: summary`` with one group: the ``numerator`` and
``denominator`` populations (or ``initial-population`` for a count) and ``measureScore``
(the indicator's value in its unit). The structures validate with ``fhir.resources``'
R4B models (R4B shares R4's MeasureReport).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sinks.reports.model import Cell, Report

__all__ = ["INDICATOR_SYSTEM", "UNIT_SYSTEM", "fhir_bundle", "measure_reports", "validate"]

INDICATOR_SYSTEM = "urn:tuyen:indicator"
UNIT_SYSTEM = "urn:tuyen:unit"
MEASURE_BASE = "urn:tuyen:measure:"
_POP = "http://terminology.hl7.org/CodeSystem/measure-population"
_ID_BAD = re.compile(r"[^A-Za-z0-9.\-]")


def _id(*parts: str) -> str:
    return _ID_BAD.sub("-", "-".join(parts))[:64]


_MASKED = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
    ]
}


def _population(code: str, count: int | None) -> dict[str, Any]:
    """A population; a suppressed (small-cell) count is absent, marked ``masked``."""
    pop: dict[str, Any] = {"code": {"coding": [{"system": _POP, "code": code}]}}
    if count is None:
        pop["_count"] = _MASKED
    else:
        pop["count"] = count
    return pop


def _report(report: Report, cell: Cell) -> dict[str, Any]:
    ind = cell.indicator
    pops = (
        [_population("initial-population", cell.numerator)]
        if ind.denominator_source == "none"
        else [_population("numerator", cell.numerator)]
        + (
            [_population("denominator", cell.denominator)]
            if cell.denominator is not None or cell.suppressed
            else []
        )
    )
    group: dict[str, Any] = {
        "code": {"coding": [{"system": INDICATOR_SYSTEM, "code": ind.code, "display": ind.name}]},
        "population": pops,
    }
    if cell.value is not None:
        group["measureScore"] = {"value": round(cell.value, 10), "unit": ind.unit}
    return {
        "resourceType": "MeasureReport",
        "id": _id(report.kind, cell.unit_code, report.period.label, ind.code),
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_BASE + ind.code,
        "subject": {
            "identifier": {"system": UNIT_SYSTEM, "value": cell.unit_code},
            "display": cell.unit_name or cell.unit_code,
        },
        "date": report.generated_at.isoformat(),
        "reporter": {"display": "tuyen"},
        "period": {"start": report.period.start.isoformat(), "end": report.period.end.isoformat()},
        "group": [group],
    }


def measure_reports(report: Report) -> list[dict[str, Any]]:
    """One MeasureReport (as JSON-ready dicts) per indicator and unit of the report."""
    return [_report(report, c) for c in report.cells]


def fhir_bundle(report: Report) -> dict[str, Any]:
    """A ``collection`` Bundle holding every MeasureReport of the report."""
    return {
        "resourceType": "Bundle",
        "id": _id("tuyen", report.kind, report.unit_code, report.period.label),
        "type": "collection",
        "timestamp": report.generated_at.isoformat(),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['id'])}", "resource": r}
            for r in measure_reports(report)
        ],
    }


def validate(resource: dict[str, Any]) -> None:
    """Validate a MeasureReport or Bundle with ``fhir.resources`` (R4B); raises on error."""
    if resource["resourceType"] == "Bundle":
        from fhir.resources.R4B.bundle import Bundle

        Bundle.model_validate(resource)
    else:
        from fhir.resources.R4B.measurereport import MeasureReport

        MeasureReport.model_validate(resource)
