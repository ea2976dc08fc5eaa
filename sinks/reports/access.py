"""Principals, scope checks and the access log.

A principal is scoped to a subtree: ``national``, ``province:01`` or ``district:001``. It may
read the reports of its own unit and of any unit below it (at the report's reference date);
anything else is refused. Every call, allowed or not, is appended to the hash-chained access
log (:mod:`sinks.reports.accesslog`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.reports.accesslog import AccessLog
from sinks.reports.exceptions import AccessDenied, BadRequest

__all__ = ["NATIONAL_CODE", "AccessLog", "Principal", "check_access", "parse_principal"]

NATIONAL_CODE = "VN"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a tier and the code of the unit whose subtree they may read."""

    tier: Tier
    code: str

    def __str__(self) -> str:
        return "national" if self.tier is Tier.NATIONAL else f"{self.tier.label}:{self.code}"


def parse_principal(text: str) -> Principal:
    """``national`` | ``province:CODE`` | ``district:CODE``."""
    s = text.strip()
    if s.lower() == "national":
        return Principal(Tier.NATIONAL, NATIONAL_CODE)
    tier_name, sep, code = s.partition(":")
    if sep and code and tier_name.lower() in {"province", "district"}:
        return Principal(Tier.parse(tier_name), code.strip())
    raise BadRequest(f"bad principal {text!r}: use national, province:CODE or district:CODE")


def _ancestors(h: Hierarchy, code: str, at: date) -> set[str]:
    out = {code}
    cur: str | None = code
    while cur is not None:
        parent = h.parent(cur, at)
        cur = parent.code if parent else None
        if cur:
            out.add(cur)
    return out


def check_access(h: Hierarchy, principal: Principal, unit: str, at: date) -> None:
    """Raise ``AccessDenied`` unless ``unit`` is the principal's unit or below it at ``at``."""
    if principal.tier is Tier.NATIONAL:
        return
    try:
        chain = _ancestors(h, unit, at)
    except HierarchyError:
        chain = {unit}
    if principal.code not in chain:
        raise AccessDenied(
            f"access refused: principal {principal} may read only its own subtree "
            f"({principal.tier.label} {principal.code} and below); {unit} is outside it"
        )
