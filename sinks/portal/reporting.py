"""The portal's reports: every report the portal shows comes from here, through the report
library's one entry point, :func:`sinks.reports.run_report` with a
:class:`~sinks.reports.ReportRequest` (the call ``tuyen report``, the DHIS2 export and the
demo make too).

A page's view is ``latest`` (every change the store holds, with each approved station-month's
figures as submitted beside it) or ``as-submitted`` (each station-month as it stood when the
unit above approved it: the library's ``basis="submitted"``).

What it adds to the library:

- the portal's own scope check first (the account's scope must cover the unit at the
  report's reference date), then the library's principal check as a second line;
- station pages: the library reports national, province and district units; a station's
  figures are its row in its district's report (the same numbers), its trend the same row in
  each month's district report;
- a cache of results per (store, principal, request, store generation): a page reloaded while
  no file changed is not recomputed; any new file in the store makes a new generation.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pyarrow.parquet as pq

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.portal.scope import Scope
from sinks.portal.stores import StoreAccess, StoreKey
from sinks.reports import (
    AccessDenied,
    BadRequest,
    Cell,
    Indicator,
    Period,
    Report,
    ReportConfig,
    ReportRequest,
    TrendPoint,
    by_code,
    parse_period,
    run_report,
)
from sinks.reports.engine import trend_periods
from sinks.reports.facts import current_reads
from sinks.reports.periods import add_months
from sinks.reports.render import fhir_bundle, to_arrow, write_csv
from sinks.reports.scope import MODES, reference_date, unit_name

__all__ = [
    "KINDS",
    "MODES",
    "VIEWS",
    "AccessDenied",
    "BadRequest",
    "Indicator",
    "Period",
    "Report",
    "ReportQuery",
    "Reports",
    "by_code",
    "parse_period",
    "period_family",
    "shift_period",
]

KINDS = ("health", "resources", "completeness")
VIEWS = ("latest", "as-submitted")
#: The page's view → the library's basis.
_BASIS = {"latest": "latest", "as-submitted": "submitted"}


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a page or download asks for (the principal comes from the account)."""

    kind: str
    unit: str
    period: str
    hierarchy: str = "as-recorded"
    view: str = "latest"
    trend: bool = False


def period_family(period: Period) -> list[tuple[str, str]]:
    """``(kind, label)`` of the month, quarter, half, 9 months and year ending with or
    holding ``period``'s last month."""
    y, m = period.last[:4], int(period.last[5:7])
    return [
        ("month", period.last),
        ("quarter", f"{y}-Q{(m - 1) // 3 + 1}"),
        ("half-year", f"{y}-H{1 if m <= 6 else 2}"),
        ("nine-months", f"{y}-9M"),
        ("year", y),
    ]


class Reports:
    """Reports for principals, through :class:`StoreAccess`, cached per store generation."""

    def __init__(
        self,
        stores: StoreAccess,
        hierarchy: Hierarchy,
        config: ReportConfig | None = None,
        *,
        cache_entries: int = 512,
    ) -> None:
        self.stores = stores
        self.h = hierarchy
        self.config = config or ReportConfig()
        self.cache_entries = cache_entries
        self._cache: OrderedDict[tuple[Any, ...], Report] = OrderedDict()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def tier_of(self, unit: str) -> Tier:
        try:
            return self.h.tier_of(unit)
        except HierarchyError:
            raise BadRequest(f"unknown unit {unit!r}") from None

    def reference(self, unit: str, period: Period, mode: str) -> date:
        if mode not in MODES:
            raise BadRequest(f"unknown hierarchy mode {mode!r}: use {' or '.join(MODES)}")
        ref = reference_date(self.h, unit, period.start, period.end, mode)
        if ref is None:
            raise BadRequest(f"unit {unit} does not exist in period {period.label}")
        return ref

    def authorize(self, scope: Scope, unit: str, period: Period, mode: str) -> date:
        """The reference date, after checking that ``scope`` covers ``unit`` then."""
        self.tier_of(unit)
        ref = self.reference(unit, period, mode)
        if not scope.covers(self.h, unit, ref):
            raise AccessDenied(
                f"access refused: {scope} may read only its own subtree; {unit} is outside it"
            )
        return ref

    def run(self, scope: Scope, q: ReportQuery) -> Report:
        """The report ``q`` asks for, as ``scope`` may see it (``AccessDenied`` otherwise)."""
        if q.kind not in KINDS:
            raise BadRequest(f"unknown report kind {q.kind!r}")
        if q.view not in VIEWS:
            raise BadRequest(f"unknown view {q.view!r}: use {' or '.join(VIEWS)}")
        period = parse_period(q.period)
        ref = self.authorize(scope, q.unit, period, q.hierarchy)
        tier = self.tier_of(q.unit)
        if tier is Tier.STATION:
            return self._station(scope, q, period, ref)
        return self._cached(scope, q, tier.label, q.unit, period, q.trend, ref)

    def _principal(self, scope: Scope, unit: str, ref: date) -> str:
        """The library's principal: the scope itself, or for a station account the district
        it belongs to (the library has no station principal; the portal has already limited
        the request to the station)."""
        if scope.tier is not Tier.STATION:
            return str(scope)
        parent = self.h.parent(scope.code, ref)
        return f"district:{parent.code if parent else unit}"

    def _cached(
        self,
        scope: Scope,
        q: ReportQuery,
        tier: str,
        unit: str,
        period: Period,
        trend: bool,
        ref: date,
    ) -> Report:
        store = self.stores.key(scope, tier, ref)
        principal = self._principal(scope, unit, ref)
        request = ReportRequest(
            kind=q.kind, tier=tier, unit=unit, period=period, principal=principal,
            hierarchy_mode=q.hierarchy, basis=_BASIS[q.view], trend=trend,
        )  # fmt: skip
        key = (str(store), request)
        gen = self.stores.generation(store)
        with self._lock:
            hit = self._cache.get((*key, gen))
            if hit is not None:
                self._cache.move_to_end((*key, gen))
                return hit
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one computation per key at a time; the others wait and reuse it
            with self._lock:
                hit = self._cache.get((*key, gen))
            if hit is not None:
                return hit
            report = self._compute(store, request)
            with self._lock:
                self._cache[(*key, gen)] = report
                while len(self._cache) > self.cache_entries:
                    self._cache.popitem(last=False)
        return report

    def _compute(self, store: StoreKey, request: ReportRequest) -> Report:
        """The library call (the portal writes its own access log entry per request)."""
        with self.stores.cursor(store, reads=current_reads(request.kind)) as con:
            return run_report(con, self.h, request, access_log=None, config=self.config)

    def _station(self, scope: Scope, q: ReportQuery, period: Period, ref: date) -> Report:
        parent = self.h.parent(q.unit, ref)
        if parent is None:
            raise BadRequest(f"station {q.unit} has no district in {period.label}")
        district = self._cached(scope, q, "district", parent.code, period, False, ref)
        cells = tuple(
            dataclasses.replace(c, level="unit")
            for c in district.cells
            if c.level == "child" and c.unit_code == q.unit
        )
        if not cells:  # a station without any row (no data): zeros as the library does
            cells = tuple(
                Cell(q.unit, unit_name(self.h, q.unit, ref), "unit", ind, 0, None)
                for ind in district.indicators
            )
        points: list[TrendPoint] = []
        if q.trend:
            for sub in trend_periods(period, self.config):
                month = self._cached(scope, q, "district", parent.code, sub, False, ref)
                points += [
                    TrendPoint(sub.label, c.indicator.code, c.numerator, c.denominator, c.value)
                    for c in month.cells
                    if c.level == "child" and c.unit_code == q.unit
                ]
        return dataclasses.replace(
            district,
            tier="station",
            unit_code=q.unit,
            unit_name=cells[0].unit_name or unit_name(self.h, q.unit, ref),
            children=(),
            cells=cells,
            trend=tuple(points),
        )

    # ---- downloads: the library's own writers, so files equal `tuyen report`'s -----------

    @staticmethod
    def csv_bytes(report: Report) -> bytes:
        buf = io.BytesIO()
        write_csv(report, buf)
        return buf.getvalue()

    @staticmethod
    def parquet_bytes(report: Report) -> bytes:
        buf = io.BytesIO()
        pq.write_table(to_arrow(report), buf, compression="zstd")
        return buf.getvalue()

    @staticmethod
    def fhir_bytes(report: Report, indicator: str | None = None) -> bytes:
        """The FHIR bundle of the report (``tuyen report --format fhir``), or only the
        MeasureReports of one indicator."""
        doc: dict[str, Any] = fhir_bundle(report)
        if indicator is not None:
            doc["entry"] = [
                e
                for e in doc["entry"]
                if e["resource"]["group"][0]["code"]["coding"][0]["code"] == indicator
            ]
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def shift_period(period: Period, n: int) -> str:
    """The label of the period ``n`` steps later (earlier when negative), of the same kind;
    nine-month and year periods move by years."""
    size = len(period.months)
    if size in (9, 12):
        year = int(period.first[:4]) + n
        return f"{year}-9M" if size == 9 else str(year)
    first = add_months(period.first, size * n)
    if size == 1:
        return first
    y, m = first[:4], int(first[5:7])
    return f"{y}-Q{(m - 1) // 3 + 1}" if size == 3 else f"{y}-H{1 if m <= 6 else 2}"
