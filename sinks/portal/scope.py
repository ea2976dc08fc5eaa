"""Who is asking in the portal: an account's scope (a subtree of the hierarchy) and roles.

The principal of every request comes from the authenticated account (session cookie or API
token), never from a request parameter. Pure (hierarchy only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from schemas.hierarchy import Hierarchy, HierarchyError, Tier, province_merger
from sinks.reports.access import NATIONAL_CODE, Principal, check_access
from sinks.reports.exceptions import AccessDenied

__all__ = ["Account", "Role", "Scope", "parse_scope"]


class Role(StrEnum):
    """What an account may do (several per account)."""

    ANALYST = "analyst"  # dashboards, indicator pages, downloads of its subtree
    APPROVER = "approver"  # approve or send back the reports of the units just below it
    ADMINISTRATOR = "administrator"  # accounts, tokens, the access log
    CLINICIAN = "clinician"  # patient summaries at its facility (hook, see patient.py)


@dataclass(frozen=True, slots=True)
class Scope:
    """A subtree: ``national``, ``province:CODE``, ``district:CODE`` (a district or, after
    July 2025, a regional health centre) or ``station:CODE``."""

    tier: Tier
    code: str

    def __str__(self) -> str:
        return "national" if self.tier is Tier.NATIONAL else f"{self.tier.label}:{self.code}"

    @property
    def home(self) -> str:
        """The unit whose dashboard the account opens on."""
        return NATIONAL_CODE if self.tier is Tier.NATIONAL else self.code

    def covers(self, h: Hierarchy, unit: str, at: date) -> bool:
        """``unit`` is this scope's unit or below it at ``at``."""
        try:
            check_access(h, Principal(self.tier, self.code), unit, at)
        except AccessDenied:
            return False
        return True

    def store_provinces(self, h: Hierarchy, at: date) -> tuple[str, ...] | None:
        """The province folders this scope may open (``None``: all, for national): its own
        province and the pre-2025 provinces merged into it."""
        if self.tier is Tier.NATIONAL:
            return None
        province = self.code if self.tier is Tier.PROVINCE else _province_of(h, self.code, at)
        olds = sorted(old for old, new in province_merger().items() if new == province)
        return tuple(dict.fromkeys([province, *olds]))


def _province_of(h: Hierarchy, code: str, at: date) -> str:
    cur = code
    for _ in range(4):
        if h.tier_of(cur) is Tier.PROVINCE:
            return cur
        try:
            parent = h.parent(cur, at)
        except HierarchyError:
            parent = None
        if parent is None:  # the unit is closed at ``at``: use its last version's parent
            last = h.versions(cur)[-1]
            end = last.valid_to or at
            parent = h.parent(cur, date.fromordinal(end.toordinal() - 1))
        if parent is None:
            break
        cur = parent.code
    raise HierarchyError(f"no province above {code}")


def parse_scope(text: str, h: Hierarchy | None = None) -> Scope:
    """``national`` | ``province:CODE`` | ``district:CODE`` | ``station:CODE``; with ``h``,
    the code must be a unit of that tier."""
    s = text.strip()
    if s.lower() == "national":
        return Scope(Tier.NATIONAL, NATIONAL_CODE)
    name, sep, code = s.partition(":")
    if not sep or not code.strip() or name.lower() not in {"province", "district", "station"}:
        raise ValueError(
            f"bad scope {text!r}: use national, province:CODE, district:CODE or station:CODE"
        )
    scope = Scope(Tier.parse(name), code.strip())
    if h is not None:
        try:
            actual = h.tier_of(scope.code)
        except HierarchyError:
            raise ValueError(f"unknown unit {scope.code!r}") from None
        if actual is not scope.tier:
            raise ValueError(f"unit {scope.code} is a {actual.label}, not a {scope.tier.label}")
    return scope


@dataclass(frozen=True, slots=True)
class Account:
    """An authenticated account: the principal of its requests."""

    id: int
    username: str
    scope: Scope
    roles: frozenset[Role]
    facility: str | None = None
    disabled: bool = False
    via_token: bool = False

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    def __str__(self) -> str:
        return f"{self.username} ({self.scope})"
