"""THE call into the report library for everything that consumes reports: the portal
(:class:`sinks.portal.reporting.Reports`), the DHIS2 export (:func:`sinks.dhis2.report_figures`),
``tuyen report`` and the demo. Keyword-only, with the fields of the report request, so a
change of the library's request shape (``sinks.reports.run_report`` taking a
``ReportRequest``) is one edit here and none in its consumers.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from schemas.hierarchy import Hierarchy
from sinks.reports import AccessLog, Period, Report, ReportConfig, run_report
from sinks.reports.engine import _trend_periods

__all__ = ["compute_report", "trend_periods"]


def compute_report(
    con: duckdb.DuckDBPyConnection,
    hierarchy: Hierarchy,
    *,
    kind: str,
    tier: str,
    period: str | Period,
    principal: str,
    unit: str | None = None,
    hierarchy_mode: str = "as-recorded",
    trend: bool = False,
    access_log: AccessLog | Path | None = None,
    config: ReportConfig | None = None,
) -> Report:
    """The report ``kind`` of ``unit`` (at ``tier``; ``None`` for the nation) over
    ``period``, as ``principal`` may see it (``AccessDenied``, ``BadRequest`` otherwise);
    logged to ``access_log`` when given (the portal logs its own entry instead)."""
    return run_report(
        con, hierarchy, kind, tier, unit, period, hierarchy_mode, principal,
        access_log=access_log, config=config, trend=trend,
    )  # fmt: skip


def trend_periods(period: Period, config: ReportConfig) -> list[Period]:
    """The months of ``period``'s trend (a month: the ``config.trend_months`` months ending
    with it), as the library computes them for its own trend."""
    return _trend_periods(period, config)
