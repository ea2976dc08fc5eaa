"""Indicators out to DHIS2: numerators and denominators as a ``dataValueSets`` JSON document
and as ADX XML (IHE QRPH Aggregate Data Exchange, ``urn:ihe:qrph:adx:2015``).

A mapping file (JSON, :class:`Dhis2Mapping`) says which DHIS2 data element (and category
option combo) receives each indicator's numerator and denominator, and which organisation
unit stands for each of our units::

    {"dataSet": {"id": "pBOMPrpg1QX", "code": "VN_HMIS_MONTHLY"},
     "attributeOptionCombo": "HllvX50cXC0",
     "orgUnits": {"04": {"id": "ImspTQPwCqd", "code": "VN_04"}, ...},
     "indicators": {
       "facility_deliveries": {
         "numerator": {"dataElement": "s46m5MS0hxu", "code": "VN_DELIVERIES_FACILITY",
                       "categoryOptionCombo": "HllvX50cXC0"},
         "denominator": {"dataElement": "UOlfIjgN8X6", "code": "VN_DELIVERIES_ALL"}}}}

- JSON (``POST /api/dataValueSets``): identifiers are DHIS2 UIDs; one data value per
  (indicator part, unit), ``orgUnit`` on each value, ``period`` in DHIS2 form (``202610``,
  ``2026Q3``, ``2026S1``, ``2026``).
- ADX (``POST /api/dataValueSets`` with ``Content-Type: application/adx+xml``): identifiers
  are codes (DHIS2's ADX default), one ``group`` per organisation unit, ``period`` as an
  ISO 8601 start and duration (``2026-10-01/P1M``); a category option combo is written as
  its categories (``categories``: category code → option code), as ADX requires.

Indicators and units the mapping does not name are left out (listed as skipped); a mapped
indicator the reports do not compute is an error. Values are the integers of the report.
The figures come from the report API through :func:`report_figures`, over
:func:`sinks.reports.run_report` with a :class:`~sinks.reports.ReportRequest` (the portal's
way to the reports too).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.hierarchy import Hierarchy, Tier
from sinks.reports.access import AccessLog
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import BadRequest
from sinks.reports.periods import Period, parse_period

__all__ = [
    "ADX_NAMESPACE",
    "Dhis2Mapping",
    "Export",
    "Figure",
    "adx_document",
    "build_export",
    "data_value_set",
    "dhis2_period",
    "report_figures",
]

ADX_NAMESPACE: Final = "urn:ihe:qrph:adx:2015"
_UID = r"^[A-Za-z][A-Za-z0-9]{10}$"
_CODE = r"^[^\s].{0,49}$"
_DURATION: Final = {1: "P1M", 3: "P3M", 6: "P6M", 12: "P1Y"}


@dataclass(frozen=True, slots=True)
class Figure:
    """One indicator for one unit: the report's numerator and denominator."""

    indicator: str
    unit: str
    numerator: int
    denominator: int | None


def report_figures(
    con: duckdb.DuckDBPyConnection,
    hierarchy: Hierarchy,
    unit: str,
    period: str,
    principal: str,
    *,
    basis: str = "latest",
    access_log: AccessLog | None = None,
    config: ReportConfig | None = None,
) -> list[Figure]:
    """Every indicator of every report kind for ``unit`` and its children over ``period``
    (``basis``: ``latest``, or ``submitted``: each station-month as approved), one
    :class:`~sinks.reports.ReportRequest` per kind through :func:`sinks.reports.run_report`
    (the reports' one entry point, the portal's and ``tuyen report``'s too)."""
    from sinks.reports import KINDS, ReportRequest, run_report

    tier = hierarchy.tier_of(unit)
    out: list[Figure] = []
    for kind in KINDS:
        request = ReportRequest(
            kind=kind,
            tier=tier.label,
            unit=None if tier is Tier.NATIONAL else unit,
            period=period,
            principal=principal,
            basis=basis,
        )
        r = run_report(con, hierarchy, request, access_log=access_log, config=config)
        out += [  # a suppressed small cell (a report that leaves its subtree) is not sent
            Figure(c.indicator.code, c.unit_code, c.numerator, c.denominator)
            for c in r.cells
            if c.numerator is not None
        ]
    return out


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Target(_Model):
    """Where one number goes: data element UID (JSON), code (ADX), disaggregation."""

    data_element: str = Field(alias="dataElement", pattern=_UID)
    code: str | None = Field(default=None, pattern=_CODE)
    category_option_combo: str | None = Field(
        default=None, alias="categoryOptionCombo", pattern=_UID
    )
    categories: dict[str, str] = Field(default_factory=dict)


class IndicatorTargets(_Model):
    numerator: Target
    denominator: Target | None = None


class Unit(_Model):
    id: str = Field(pattern=_UID)
    code: str | None = Field(default=None, pattern=_CODE)


class DataSet(_Model):
    id: str | None = Field(default=None, pattern=_UID)
    code: str | None = Field(default=None, pattern=_CODE)


class Dhis2Mapping(_Model):
    """The mapping file (see the module docstring)."""

    data_set: DataSet | None = Field(default=None, alias="dataSet")
    attribute_option_combo: str | None = Field(
        default=None, alias="attributeOptionCombo", pattern=_UID
    )
    org_units: dict[str, Unit] = Field(alias="orgUnits")
    indicators: dict[str, IndicatorTargets]

    @classmethod
    def load(cls, path: Path) -> Dhis2Mapping:
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise BadRequest(
                f"bad DHIS2 mapping {path}: {exc.errors()[0]['msg']} at "
                f"{'.'.join(map(str, exc.errors()[0]['loc']))}"
            ) from None


def dhis2_period(p: Period) -> str:
    """Our period in DHIS2's own form (``202610``, ``2026Q3``, ``2026S2``, ``2026``)."""
    y, m, n = p.first[:4], int(p.first[5:7]), len(p.months)
    if n == 1:
        return f"{y}{m:02d}"
    if n == 3:
        return f"{y}Q{(m - 1) // 3 + 1}"
    if n == 6:
        return f"{y}S{(m - 1) // 6 + 1}"
    if n == 12:
        return y
    raise BadRequest(f"DHIS2 has no period type for {p.label} ({n} months)")


def adx_period(p: Period) -> str:
    """ISO 8601 start date and duration (``2026-10-01/P1M``)."""
    n = len(p.months)
    if n not in _DURATION:
        raise BadRequest(f"no ADX period for {p.label} ({n} months)")
    return f"{p.start.isoformat()}/{_DURATION[n]}"


@dataclass(frozen=True, slots=True)
class Value:
    """One number to send: its target, unit and value."""

    indicator: str
    part: str  # numerator | denominator
    unit: str
    org_unit: Unit
    target: Target
    value: int


@dataclass
class Export:
    """The values to send and what the mapping left out."""

    period: Period
    values: list[Value] = field(default_factory=list)
    skipped_units: set[str] = field(default_factory=set)
    skipped_indicators: set[str] = field(default_factory=set)


def build_export(figures: Iterable[Figure], mapping: Dhis2Mapping, period: str) -> Export:
    """Map figures onto DHIS2 targets. Raises ``BadRequest`` for a mapped indicator the
    figures do not hold or a period DHIS2 cannot express."""
    p = parse_period(period)
    dhis2_period(p)
    out = Export(p)
    seen: set[str] = set()
    for f in figures:
        seen.add(f.indicator)
        targets = mapping.indicators.get(f.indicator)
        if targets is None:
            out.skipped_indicators.add(f.indicator)
            continue
        org = mapping.org_units.get(f.unit)
        if org is None:
            out.skipped_units.add(f.unit)
            continue
        out.values.append(
            Value(f.indicator, "numerator", f.unit, org, targets.numerator, f.numerator)
        )
        if targets.denominator is not None and f.denominator is not None:
            out.values.append(
                Value(f.indicator, "denominator", f.unit, org, targets.denominator, f.denominator)
            )
    missing = sorted(set(mapping.indicators) - seen)
    if missing:
        raise BadRequest(f"the mapping names indicators the reports do not compute: {missing}")
    return out


def data_value_set(
    export: Export, mapping: Dhis2Mapping, *, complete_date: str | None = None
) -> dict[str, Any]:
    """The ``dataValueSets`` JSON document (UIDs)."""
    doc: dict[str, Any] = {}
    if mapping.data_set is not None and mapping.data_set.id:
        doc["dataSet"] = mapping.data_set.id
    if complete_date:
        doc["completeDate"] = complete_date
    doc["period"] = dhis2_period(export.period)
    if mapping.attribute_option_combo:
        doc["attributeOptionCombo"] = mapping.attribute_option_combo
    values = []
    for v in export.values:
        dv: dict[str, Any] = {
            "dataElement": v.target.data_element,
            "period": doc["period"],
            "orgUnit": v.org_unit.id,
        }
        if v.target.category_option_combo:
            dv["categoryOptionCombo"] = v.target.category_option_combo
        dv["value"] = str(v.value)
        dv["comment"] = f"tuyen {v.indicator} {v.part}"
        values.append(dv)
    doc["dataValues"] = values
    return doc


def adx_document(
    export: Export,
    mapping: Dhis2Mapping,
    *,
    exported: datetime,
    complete_date: str | None = None,
) -> bytes:
    """The ADX message (codes). Raises ``BadRequest`` when a code is missing."""
    ET.register_namespace("", ADX_NAMESPACE)
    root = ET.Element(f"{{{ADX_NAMESPACE}}}adx", {"exported": exported.isoformat()})
    groups: dict[str, ET.Element] = {}
    period = adx_period(export.period)
    for v in export.values:
        if v.org_unit.code is None or v.target.code is None:
            raise BadRequest(
                f"ADX needs codes: org unit of {v.unit} or data element of {v.indicator} "
                f"{v.part} has none in the mapping"
            )
        group = groups.get(v.unit)
        if group is None:
            attrs = {"orgUnit": v.org_unit.code, "period": period}
            if mapping.data_set is not None and mapping.data_set.code:
                attrs["dataSet"] = mapping.data_set.code
            if complete_date:
                attrs["completeDate"] = complete_date
            group = ET.SubElement(root, f"{{{ADX_NAMESPACE}}}group", attrs)
            groups[v.unit] = group
        ET.SubElement(
            group,
            f"{{{ADX_NAMESPACE}}}dataValue",
            {"dataElement": v.target.code, **v.target.categories, "value": str(v.value)},
        )
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
