"""``run_report``: access check, facts from DuckDB, roll-up over the (restated) tree, cells.

Aggregated first, divided last: every numerator and denominator is a sum of per-station
(per station-month for completeness) parts, so a unit's parts equal the sums of its
children's; the value is computed from the sums only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from schemas.hierarchy import Hierarchy, HierarchyError, Tier, province_merger
from sinks.catalog import snapshot
from sinks.reports.access import NATIONAL_CODE, AccessLog, check_access, parse_principal
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import AccessDenied, BadRequest
from sinks.reports.facts import ScopeFilter, current_reads
from sinks.reports.indicators import KINDS, Indicator, for_kind
from sinks.reports.model import Cell, Report, TrendPoint
from sinks.reports.parts import (
    Parts,
    ReportScope,
    compute_parts,
    reporting_children,
    station_count,
)
from sinks.reports.periods import Period, add_months, parse_period
from sinks.reports.request import BASES, ReportRequest
from sinks.reports.scope import MODES, make_mapper, reference_date, unit_name
from sinks.reports.smallcells import suppress_report
from sinks.signoff.ledger import Ledger, asof_views, drop_asof_views, read_ledger

__all__ = ["run_report", "trend_periods"]

logger = logging.getLogger(__name__)


def run_report(
    con: duckdb.DuckDBPyConnection,
    hierarchy: Hierarchy,
    request: ReportRequest,
    *,
    access_log: AccessLog | Path | None = None,
    config: ReportConfig | None = None,
) -> Report:
    """Compute the report ``request`` asks for, over the catalog ``con``.

    Raises ``AccessDenied`` when the principal's subtree does not hold the unit and
    ``BadRequest`` for an unknown kind, tier, period, unit, mode or basis. Every call,
    allowed, refused or failed, is appended to ``access_log`` when given.
    """
    if not isinstance(request, ReportRequest):
        raise TypeError("run_report takes a ReportRequest (sinks.reports.ReportRequest)")
    log = AccessLog(access_log) if isinstance(access_log, Path) else access_log
    entry = request.log_entry()
    started = time.perf_counter()
    try:
        # one listing of the store for all the report's queries, deciding the views they read
        with snapshot(con, reads=current_reads(request.kind)):
            report = _run(con, hierarchy, request, config or ReportConfig(), entry)
    except AccessDenied as exc:
        if log:
            log.append({**entry, "outcome": "refused", "reason": exc.message})
        raise
    except Exception as exc:
        if log:
            log.append({**entry, "outcome": "error", "reason": str(exc)[:500]})
        raise
    cfg = config or ReportConfig()
    if leaves_subtree(report, cfg) and cfg.suppression_threshold > 1:
        report = suppress_report(report, cfg.suppression_threshold)
        if report.suppression:
            entry["suppressed"] = report.suppression.primary + report.suppression.complementary
    if log:
        log.append(
            {**entry, "outcome": "allowed", "seconds": round(time.perf_counter() - started, 3)}
        )
    return report


def leaves_subtree(report: Report, config: ReportConfig) -> bool:
    """The report leaves its subtree (and is suppressed): its tier, or the tier of the
    principal it is for (a national account's province report), is in ``suppress_tiers``."""
    asked_by = parse_principal(report.principal).tier.label
    return bool({report.tier, asked_by} & config.suppress_tiers)


def _run(
    con: duckdb.DuckDBPyConnection,
    h: Hierarchy,
    request: ReportRequest,
    config: ReportConfig,
    entry: dict[str, object],
) -> Report:
    kind, tier_name, unit = request.kind, request.tier, request.unit
    mode, period_in, principal_in = request.hierarchy_mode, request.period, request.principal
    trend = request.trend
    principal = parse_principal(principal_in) if isinstance(principal_in, str) else principal_in
    entry["principal"] = str(principal)
    if kind not in KINDS:
        raise BadRequest(f"unknown report kind {kind!r}: use {', '.join(KINDS)}")
    if mode not in MODES:
        raise BadRequest(f"unknown hierarchy mode {mode!r}: use {' or '.join(MODES)}")
    if request.basis not in BASES:
        raise BadRequest(f"unknown basis {request.basis!r}: use {' or '.join(BASES)}")
    try:
        tier = Tier.parse(tier_name)
    except ValueError:
        raise BadRequest(
            f"unknown tier {tier_name!r}: use national, province or district"
        ) from None
    if tier is Tier.STATION:
        raise BadRequest("reports are for national, province or district units")
    period = parse_period(period_in) if isinstance(period_in, str) else period_in
    entry["period"] = period.label
    code = unit or (NATIONAL_CODE if tier is Tier.NATIONAL else None)
    if code is None:
        raise BadRequest(f"a {tier.label} report needs --unit")
    entry["unit"] = code
    try:
        actual = h.tier_of(code)
    except HierarchyError:
        raise BadRequest(f"unknown unit {code!r}") from None
    if actual is not tier:
        raise BadRequest(f"unit {code} is a {actual.label}, not a {tier.label}")
    ref = reference_date(h, code, period.start, period.end, mode)
    if ref is None:
        hint = " (try --hierarchy as-recorded)" if mode == "current" else ""
        raise BadRequest(f"unit {code} does not exist in period {period.label}{hint}")
    check_access(h, principal, code, ref)

    rs = ReportScope(
        h=h,
        kind=kind,
        tier=tier,
        unit=code,
        mode=mode,
        ref=ref,
        mapper=make_mapper(h, mode, ref),
        scope=_scope_filter(h, tier, code, ref, mode),
        config=config,
        ledger=read_ledger(con, period.months),
    )
    indicators = for_kind(kind, tier.label)
    children = [(c.code, c.name) for c in h.children(code, ref)]
    submitted = request.basis == "submitted"
    approved = len(rs.ledger.approvals())
    frozen: Parts | None = None
    if kind != "completeness" and (submitted or approved):
        with _as_submitted(con, rs.ledger, period):
            frozen = compute_parts(con, rs, period)
    parts = frozen if submitted and frozen is not None else compute_parts(con, rs, period)
    known = {c for c, _ in children}
    extra = sorted({child for (_i, child) in parts if child not in known})
    all_children = children + [(c, unit_name(h, c, ref)) for c in extra]
    name = unit_name(h, code, ref)
    scales = {i.code: _scale(i, period, request.annualise) for i in indicators}
    cells = _cells(rs, indicators, parts, name, all_children, known, scales)
    if frozen is not None and not submitted:  # latest, with the revisions since approval
        as_submitted = _cells(rs, indicators, frozen, name, all_children, known, scales)
        cells = [
            replace(c, submitted=(s.numerator, s.denominator))
            for c, s in zip(cells, as_submitted, strict=True)
        ]

    points: list[TrendPoint] = []
    if trend:
        for sub in trend_periods(period, config):
            if submitted:
                with _as_submitted(con, rs.ledger, sub):
                    sub_parts = compute_parts(con, rs, sub)
            else:
                sub_parts = compute_parts(con, rs, sub)
            sub_scales = {i.code: _scale(i, sub, request.annualise) for i in indicators}
            sub_cells = _cells(rs, indicators, sub_parts, "", [], known, sub_scales)
            points += [
                TrendPoint(sub.label, c.indicator.code, c.numerator, c.denominator, c.value)
                for c in sub_cells
            ]
    return Report(
        kind=kind,
        tier=tier.label,
        unit_code=code,
        unit_name=name,
        period=period,
        hierarchy_mode=mode,
        principal=str(principal),
        reference_date=ref,
        generated_at=datetime.now(UTC),
        indicators=indicators,
        children=tuple(all_children),
        cells=tuple(cells),
        trend=tuple(points),
        basis=request.basis,
        annualised=request.annualise,
        population_basis=h.population_basis(ref) if h.has_population else "",
        reporting=reporting_children(con, rs, period),
        approved_station_months=approved,
    )


@contextmanager
def _as_submitted(con: duckdb.DuckDBPyConnection, ledger: Ledger, period: Period) -> Iterator[None]:
    """Run the report SQL on the records as approved (``sinks.signoff.ledger.asof_views``)."""
    asof_views(con, ledger, period.first, period.last)
    try:
        yield
    finally:
        drop_asof_views(con)


def _scale(ind: Indicator, period: Period, annualise: bool) -> float:
    """How the period length changes the value (see ``Indicator.scaling``)."""
    months = len(period.months)
    if ind.scaling == "prorated_target" or (ind.scaling == "per_year" and annualise):
        return 12 / months
    return 1.0


def trend_periods(period: Period, config: ReportConfig) -> list[Period]:
    """The months of a trend: the period's own, or for one month the ``trend_months`` months
    up to it."""
    months = list(period.months)
    if len(months) == 1:
        months = [add_months(period.last, -k) for k in range(config.trend_months - 1, -1, -1)]
    return [Period(m, m, m) for m in months]


def _scope_filter(h: Hierarchy, tier: Tier, code: str, ref: date, mode: str) -> ScopeFilter:
    """A superset filter on recorded codes, pushed into the SQL."""
    if tier is Tier.NATIONAL:
        return ScopeFilter()
    if mode == "as-recorded":
        col = "province_code" if tier is Tier.PROVINCE else "district_code"
        return ScopeFilter(col, [code])
    province = code if tier is Tier.PROVINCE else _province_of(h, code, ref)
    olds = [old for old, new in province_merger().items() if new == province]
    return ScopeFilter("province_code", [province, *olds])


def _province_of(h: Hierarchy, code: str, at: date) -> str:
    parent = h.parent(code, at)
    return parent.code if parent else code


def _cells(
    rs: ReportScope,
    indicators: tuple[Indicator, ...],
    parts: Parts,
    name: str,
    children: list[tuple[str, str]],
    known: set[str],
    scales: dict[str, float],
) -> list[Cell]:
    """The unit's cell and its children's for every indicator. Denominators from the
    hierarchy (population, stations) exist for the unit and its children in the hierarchy at
    the reference date only: a child that stands for a recorded unit no longer in the tree
    (an old province, a station's site) has none, so the children never add up to more than
    the unit."""
    cache: dict[tuple[str, str], int | None] = {}

    def hierarchy_den(ind: Indicator, code: str) -> int | None:
        key = (ind.denominator_source + ":" + ind.population_group, code)
        if key not in cache:
            cache[key] = _hierarchy_den(rs, ind, code) if code in known or code == rs.unit else None
        return cache[key]

    cells: list[Cell] = []
    for ind in indicators:
        scale = scales[ind.code]
        # the unit row sums every in-scope part (children listed or not)
        unit_n = sum(n for (i, _c), (n, _d) in parts.items() if i == ind.code)
        unit_d = sum(d or 0 for (i, _c), (_n, d) in parts.items() if i == ind.code)
        unit_den = _den(ind, unit_d, hierarchy_den, rs.unit)
        cells.append(Cell(rs.unit, name, "unit", ind, unit_n, unit_den, scale))
        for code, cname in children:
            n, d = parts.get((ind.code, code), (0, None))
            den = _den(ind, d, hierarchy_den, code)
            cells.append(Cell(code, cname, "child", ind, n, den, scale))
    return cells


def _hierarchy_den(rs: ReportScope, ind: Indicator, code: str) -> int | None:
    try:
        if ind.denominator_source == "population":
            if not rs.h.has_population:
                return None
            return rs.h.population(code, rs.ref, ind.population_group)
        return station_count(rs.h, code, rs.ref)
    except HierarchyError:
        return None


def _den(
    ind: Indicator,
    data_den: int | None,
    hierarchy_den: Callable[[Indicator, str], int | None],
    code: str,
) -> int | None:
    if ind.denominator_source in ("population", "stations"):
        return hierarchy_den(ind, code)
    if ind.denominator_source == "none":
        return None
    return data_den or 0
