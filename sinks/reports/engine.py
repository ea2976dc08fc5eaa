"""``run_report``: access check, facts from DuckDB, roll-up over the (restated) tree, cells.

Aggregated first, divided last: every numerator and denominator is a sum of per-station
(per station-month for completeness) parts, so a unit's parts equal the sums of its
children's; the value is computed from the sums only.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from schemas.hierarchy import Hierarchy, HierarchyError, Tier, province_merger
from sinks.reports.access import NATIONAL_CODE, AccessLog, Principal, check_access, parse_principal
from sinks.reports.completeness import completeness_parts
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import AccessDenied, BadRequest
from sinks.reports.facts import ARRIVALS, FACTS, ScopeFilter, collect_arrivals, collect_facts
from sinks.reports.indicators import KINDS, Indicator, for_kind
from sinks.reports.model import Cell, Report, TrendPoint
from sinks.reports.periods import Period, add_months, parse_period
from sinks.reports.scope import MODES, Mapper, child_of, make_mapper, reference_date, unit_name
from sinks.reports.smallcells import suppress_report

__all__ = ["run_report"]

logger = logging.getLogger(__name__)

_MAP = "_tuyen_map"
Parts = dict[tuple[str, str], tuple[int, int | None]]  # (indicator, child) -> (num, den)


def run_report(
    con: duckdb.DuckDBPyConnection,
    hierarchy: Hierarchy,
    kind: str,
    tier: str,
    unit: str | None,
    period: str | Period,
    hierarchy_mode: str = "as-recorded",
    principal: str | Principal = "national",
    *,
    access_log: AccessLog | Path | None = None,
    config: ReportConfig | None = None,
    trend: bool = False,
) -> Report:
    """Compute a report of ``kind`` for ``unit`` (at ``tier``) over ``period``.

    Raises ``AccessDenied`` when the principal's subtree does not hold the unit and
    ``BadRequest`` for an unknown kind, tier, period, unit or mode. Every call, allowed,
    refused or failed, is appended to ``access_log`` when given.
    """
    log = AccessLog(access_log) if isinstance(access_log, Path) else access_log
    entry: dict[str, object] = {
        "principal": str(principal),
        "kind": kind,
        "tier": tier,
        "unit": unit,
        "period": str(period),
        "hierarchy": hierarchy_mode,
    }
    started = time.perf_counter()
    try:
        report = _run(
            con,
            hierarchy,
            kind,
            tier,
            unit,
            period,
            hierarchy_mode,
            principal,
            config or ReportConfig(),
            trend,
            entry,
        )
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
    kind: str,
    tier_name: str,
    unit: str | None,
    period_in: str | Period,
    mode: str,
    principal_in: str | Principal,
    config: ReportConfig,
    trend: bool,
    entry: dict[str, object],
) -> Report:
    principal = parse_principal(principal_in) if isinstance(principal_in, str) else principal_in
    entry["principal"] = str(principal)
    if kind not in KINDS:
        raise BadRequest(f"unknown report kind {kind!r}: use {', '.join(KINDS)}")
    if mode not in MODES:
        raise BadRequest(f"unknown hierarchy mode {mode!r}: use {' or '.join(MODES)}")
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

    mapper = make_mapper(h, mode, ref)
    indicators = for_kind(kind, tier.label)
    scope = _scope_filter(h, tier, code, ref, mode)
    children = [(c.code, c.name) for c in h.children(code, ref)]
    parts = _parts(con, h, kind, tier, code, period, mapper, scope, config, mode)
    known = {c for c, _ in children}
    extra = sorted({child for (_i, child) in parts if child not in known})
    children += [(c, unit_name(h, c, ref)) for c in extra]
    cells = _cells(h, indicators, parts, code, unit_name(h, code, ref), children, ref)

    points: list[TrendPoint] = []
    if trend:
        for sub in _trend_periods(period, config):
            sub_parts = _parts(con, h, kind, tier, code, sub, mapper, scope, config, mode)
            sub_cells = _cells(h, indicators, sub_parts, code, "", [], ref, unit_only=True)
            points += [
                TrendPoint(sub.label, c.indicator.code, c.numerator, c.denominator, c.value)
                for c in sub_cells
            ]
    return Report(
        kind=kind,
        tier=tier.label,
        unit_code=code,
        unit_name=unit_name(h, code, ref),
        period=period,
        hierarchy_mode=mode,
        principal=str(principal),
        reference_date=ref,
        generated_at=datetime.now(UTC),
        indicators=indicators,
        children=tuple(children),
        cells=tuple(cells),
        trend=tuple(points),
    )


def _trend_periods(period: Period, config: ReportConfig) -> list[Period]:
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


def _map_keys(
    con: duckdb.DuckDBPyConnection, tier: Tier, unit: str, mapper: Mapper, tables: list[str]
) -> None:
    union = " UNION ".join(
        f"SELECT DISTINCT station_code, district_code, province_code, month FROM {t}"
        for t in tables
    )
    keys = con.execute(union).fetchall()
    cols: dict[str, list[str | None]] = defaultdict(list)
    for s, d, p, m in keys:
        mapped = mapper(s, d, p, m)
        for name, v in zip(
            ("station_code", "district_code", "province_code", "month"), (s, d, p, m), strict=True
        ):
            cols[name].append(v)
        cols["child"].append(child_of(tier, unit, mapped))
        cols["m_station"].append(mapped[0])
        cols["m_district"].append(mapped[1])
        cols["m_province"].append(mapped[2])
    names = [
        "station_code",
        "district_code",
        "province_code",
        "month",
        "child",
        "m_station",
        "m_district",
        "m_province",
    ]
    table = pa.table({n: pa.array(cols[n], type=pa.string()) for n in names})
    con.register(_MAP, table)


def _parts(
    con: duckdb.DuckDBPyConnection,
    h: Hierarchy,
    kind: str,
    tier: Tier,
    unit: str,
    period: Period,
    mapper: Mapper,
    scope: ScopeFilter,
    config: ReportConfig,
    mode: str,
) -> Parts:
    t0 = time.perf_counter()
    if kind == "completeness":
        collect_arrivals(con, period, scope)
        _map_keys(con, tier, unit, mapper, [ARRIVALS])
        rows = con.execute(
            f"SELECT a.station_code, a.month, m.child, m.m_district, m.m_province, "
            f"epoch(a.last_received) FROM {ARRIVALS} a JOIN {_MAP} m USING "
            "(station_code, district_code, province_code, month) WHERE m.child IS NOT NULL"
        ).fetchall()
        con.unregister(_MAP)
        out = completeness_parts(h, tier, unit, period, mapper, rows, config, mode)
    else:
        collect_facts(con, kind, period, scope)
        _map_keys(con, tier, unit, mapper, [FACTS])
        agg = con.execute(
            f"SELECT f.indicator, m.child, sum(f.num), sum(f.den) FROM {FACTS} f JOIN {_MAP} m "
            "USING (station_code, district_code, province_code, month) "
            "WHERE m.child IS NOT NULL GROUP BY ALL"
        ).fetchall()
        con.unregister(_MAP)
        out = {(str(i), str(c)): (int(n or 0), None if d is None else int(d)) for i, c, n, d in agg}
    logger.info(
        "report parts kind=%s unit=%s period=%s rows=%d seconds=%.3f",
        kind,
        unit,
        period.label,
        len(out),
        time.perf_counter() - t0,
    )
    return out


def _population(h: Hierarchy, code: str, at: date) -> int | None:
    try:
        return h.population(code, at)
    except HierarchyError:
        return None


def _cells(
    h: Hierarchy,
    indicators: tuple[Indicator, ...],
    parts: Parts,
    unit: str,
    name: str,
    children: list[tuple[str, str]],
    ref: date,
    *,
    unit_only: bool = False,
) -> list[Cell]:
    cells: list[Cell] = []
    pops: dict[str, int | None] = {}

    def pop(code: str) -> int | None:
        if code not in pops:
            pops[code] = _population(h, code, ref) if h.has_population else None
        return pops[code]

    for ind in indicators:
        child_cells = []
        for code, cname in children:
            n, d = parts.get((ind.code, code), (0, None))
            child_cells.append(Cell(code, cname, "child", ind, n, _den(ind, d, pop(code))))
        # the unit row sums every in-scope part (children listed or not)
        unit_n = sum(n for (i, _c), (n, _d) in parts.items() if i == ind.code)
        unit_d = sum(d or 0 for (i, _c), (_n, d) in parts.items() if i == ind.code)
        cells.append(Cell(unit, name, "unit", ind, unit_n, _den(ind, unit_d, pop(unit))))
        if not unit_only:
            cells += child_cells
    return cells


def _den(ind: Indicator, data_den: int | None, population: int | None) -> int | None:
    if ind.denominator_source == "population":
        return population
    if ind.denominator_source == "none":
        return None
    return data_den or 0
