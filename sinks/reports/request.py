"""What a caller asks for: one frozen, keyword-only request object.

    >>> from sinks.reports import ReportRequest, run_report            # doctest: +SKIP
    >>> req = ReportRequest(kind="health", tier="province", unit="01", period="2026-Q3",
    ...                     principal="province:01")
    >>> run_report(con, Hierarchy.default(), req, access_log=log)

There is no default principal: whoever builds a request (the CLI from ``--as``, the portal
from the authenticated account) says who asks, and the access check and the access log use
exactly that. The values are checked by :func:`sinks.reports.run_report` (so that a bad
request is refused *and* logged like every other call), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sinks.reports.access import Principal
from sinks.reports.periods import Period

__all__ = ["BASES", "ReportRequest"]

#: ``latest``: every change the store holds; ``submitted``: each station-month as it stood
#: when the unit above approved it (see docs/reports.md, "Sign-off and lock").
BASES: Final = ("latest", "submitted")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportRequest:
    """One report: what (``kind``), for which unit (``tier``, ``unit``), over which
    ``period``, by whom (``principal``), and how.

    - ``kind``: ``resources`` | ``health`` | ``completeness``;
    - ``tier``: ``national`` | ``province`` | ``district``; ``unit`` its code (default
      ``VN`` for the national tier, required otherwise);
    - ``period``: ``2026-10`` | ``2026-Q3`` | ``2026-H1`` | ``2026-9M`` | ``2026`` (or a
      :class:`~sinks.reports.periods.Period`);
    - ``principal``: ``national`` | ``province:CODE`` | ``district:CODE`` (or a
      :class:`~sinks.reports.access.Principal`); required, never defaulted;
    - ``hierarchy_mode``: ``as-recorded`` (the units on each record) or ``current``
      (restated into the structure at the reference date);
    - ``basis``: ``latest`` or ``submitted`` (figures frozen at approval);
    - ``annualise``: scale per-year rates of a shorter period to a year (12 / months);
    - ``trend``: also compute the month-by-month trend (HTML charts).
    """

    kind: str
    tier: str
    period: str | Period
    principal: str | Principal
    unit: str | None = None
    hierarchy_mode: str = "as-recorded"
    basis: str = "latest"
    annualise: bool = False
    trend: bool = False

    def log_entry(self) -> dict[str, object]:
        """The request's fields as the access log records them."""
        return {
            "principal": str(self.principal),
            "kind": self.kind,
            "tier": self.tier,
            "unit": self.unit,
            "period": str(self.period),
            "hierarchy": self.hierarchy_mode,
            "basis": self.basis,
        }
