"""Resource, health-indicator and completeness reports over the DuckDB catalog.

    >>> from sinks.reports import ReportRequest, run_report          # doctest: +SKIP
    >>> req = ReportRequest(kind="health", tier="province", unit="01", period="2026-Q3",
    ...                     principal="province:01")
    >>> r = run_report(con, Hierarchy.default(), req)
    >>> r.numerator("facility_deliveries"), r.denominator("facility_deliveries"), r.value(...)

Indicators are numerator/denominator pairs summed over the tree first, divided last.
"""

from sinks.reports.access import AccessLog, Principal, check_access, parse_principal
from sinks.reports.config import ReportConfig, source_tier
from sinks.reports.engine import run_report
from sinks.reports.exceptions import AccessDenied, BadRequest, ReportError
from sinks.reports.indicators import INDICATORS, KINDS, Indicator, by_code, for_kind
from sinks.reports.model import Cell, Report, TrendPoint
from sinks.reports.periods import Period, parse_period, working_day_deadline
from sinks.reports.request import BASES, ReportRequest

__all__ = [
    "BASES",
    "INDICATORS",
    "KINDS",
    "AccessDenied",
    "AccessLog",
    "BadRequest",
    "Cell",
    "Indicator",
    "Period",
    "Principal",
    "Report",
    "ReportConfig",
    "ReportError",
    "ReportRequest",
    "TrendPoint",
    "by_code",
    "check_access",
    "for_kind",
    "parse_period",
    "parse_principal",
    "run_report",
    "source_tier",
    "working_day_deadline",
]
