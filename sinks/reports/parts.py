"""A report's numerators and denominators per (indicator, child unit), from the catalog.

The facts (:mod:`sinks.reports.facts`) are per recorded placement and month; each distinct
placement is mapped once in Python (as recorded, or restated by :mod:`sinks.reports.scope`)
to the child unit of the report's unit it counts for, and DuckDB sums the facts per child.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from schemas.hierarchy import Hierarchy, Tier
from sinks.reports.completeness import completeness_parts
from sinks.reports.config import ReportConfig
from sinks.reports.facts import ARRIVALS, FACTS, ScopeFilter, collect_arrivals, collect_facts
from sinks.reports.periods import Period
from sinks.reports.scope import Mapper, child_of
from sinks.signoff.ledger import Ledger

__all__ = ["Parts", "ReportScope", "compute_parts", "reporting_children", "station_count"]

logger = logging.getLogger(__name__)

_MAP = "_tuyen_map"
#: (indicator, child) -> (numerator, denominator counted from the data or None)
Parts = dict[tuple[str, str], tuple[int, int | None]]
_KEYS = ("station_code", "district_code", "province_code", "month")


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: its unit at a tier, the structure it reports in, the mapping of
    recorded placements into it and the filter pushed into the SQL."""

    h: Hierarchy
    kind: str
    tier: Tier
    unit: str
    mode: str
    ref: date
    mapper: Mapper
    scope: ScopeFilter
    config: ReportConfig
    ledger: Ledger


def _map_keys(con: duckdb.DuckDBPyConnection, rs: ReportScope, table: str) -> None:
    """Register ``_tuyen_map``: each distinct placement of ``table`` → its child unit."""
    keys = con.execute(
        f"SELECT DISTINCT station_code, district_code, province_code, month FROM {table}"
    ).fetchall()
    cols: dict[str, list[str | None]] = defaultdict(list)
    for s, d, p, m in keys:
        mapped = rs.mapper(s, d, p, m)
        for name, v in zip(_KEYS, (s, d, p, m), strict=True):
            cols[name].append(v)
        cols["child"].append(child_of(rs.tier, rs.unit, mapped))
        cols["m_station"].append(mapped[0])
        cols["m_district"].append(mapped[1])
        cols["m_province"].append(mapped[2])
    names = [*_KEYS, "child", "m_station", "m_district", "m_province"]
    con.register(_MAP, pa.table({n: pa.array(cols[n], type=pa.string()) for n in names}))


def _mapped(
    con: duckdb.DuckDBPyConnection, rs: ReportScope, table: str, select: str, tail: str = ""
) -> list[tuple[Any, ...]]:
    """``select`` over ``table`` (alias ``a``) joined to its placements' children (``m``),
    in-scope rows only."""
    _map_keys(con, rs, table)
    try:
        return con.execute(
            f"{select} FROM {table} a JOIN {_MAP} m USING ({', '.join(_KEYS)}) "
            f"WHERE m.child IS NOT NULL {tail}"
        ).fetchall()
    finally:
        con.unregister(_MAP)


def compute_parts(con: duckdb.DuckDBPyConnection, rs: ReportScope, period: Period) -> Parts:
    """The parts of every indicator of ``rs.kind`` per child unit over ``period``."""
    t0 = time.perf_counter()
    if rs.kind == "completeness":
        collect_arrivals(con, period, rs.scope)
        rows = _mapped(
            con,
            rs,
            ARRIVALS,
            "SELECT a.station_code, a.month, m.child, m.m_district, m.m_province, "
            "epoch(a.first_received)",
        )
        out = completeness_parts(
            rs.h,
            rs.tier,
            rs.unit,
            period,
            rs.mapper,
            rows,
            rs.config,
            rs.mode,
            approvals=rs.ledger.approvals(),
            locks=rs.ledger.lock_times(),
        )
    else:
        collect_facts(con, rs.kind, period, rs.scope)
        agg = _mapped(
            con, rs, FACTS, "SELECT a.indicator, m.child, sum(a.num), sum(a.den)", "GROUP BY ALL"
        )
        out = {(str(i), str(c)): (int(n or 0), None if d is None else int(d)) for i, c, n, d in agg}
    logger.info(
        "report parts kind=%s unit=%s period=%s rows=%d seconds=%.3f",
        rs.kind,
        rs.unit,
        period.label,
        len(out),
        time.perf_counter() - t0,
    )
    return out


def reporting_children(
    con: duckdb.DuckDBPyConnection, rs: ReportScope, period: Period
) -> tuple[str, ...]:
    """The children of the report's unit with at least one station report submitted for a
    month of the period (national reports say which provinces reported)."""
    collect_arrivals(con, period, rs.scope)
    rows = _mapped(con, rs, ARRIVALS, "SELECT DISTINCT m.child", "ORDER BY 1")
    return tuple(str(r[0]) for r in rows)


def station_count(h: Hierarchy, code: str, at: date) -> int:
    """Stations open under ``code`` at ``at`` (1 for a station)."""
    if h.tier_of(code) is Tier.STATION:
        return 1
    return len(h.stations_in(code, at))
