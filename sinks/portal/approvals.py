"""Approval of monthly reports: the interface the portal's pages use, and a stand-in.

MERGE NOTE (reports helper): ``ApprovalBackend`` is what the approval pages need. The
``reports`` helper is building the real submission / approval / lock (signed submission
events, "as submitted" figures); at merge, write a thin class over their Python API that
satisfies this Protocol and pass it to ``create_app(approvals=...)``. ``LocalApprovals``
below is a **stand-in** (a table in the portal's SQLite database, fed by ``submit``) so the pages
can be built and tested now; it locks nothing and freezes no figures
(``supports_as_submitted`` is false, which hides the "as submitted" switch).

Rule used by both: a unit's monthly report is approved by the unit just above it (a
station's by its district or regional centre, a district's by its province, a province's by
the ministry).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.portal.db import Database
from sinks.portal.scope import Scope
from sinks.reports.access import NATIONAL_CODE

__all__ = ["ApprovalBackend", "ApprovalError", "LocalApprovals", "Submission", "approver_unit"]

Status = Literal["submitted", "approved", "returned"]


class ApprovalError(ValueError):
    """An impossible decision (not waiting, not yours to decide)."""


@dataclass(frozen=True, slots=True)
class Submission:
    id: int
    unit: str
    period: str  # YYYY-MM
    status: Status
    submitted_by: str
    submitted_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    note: str | None = None


class ApprovalBackend(Protocol):
    """What the portal needs from submission / approval / lock."""

    @property
    def supports_as_submitted(self) -> bool:
        """Whether reports can be read "as submitted" (figures frozen at approval)."""
        ...

    def waiting_for(self, scope: Scope, h: Hierarchy) -> list[Submission]:
        """Submissions this scope's unit has to decide (status ``submitted``)."""
        ...

    def recent(self, scope: Scope, h: Hierarchy, limit: int = 50) -> list[Submission]:
        """Decided submissions of the units just below the scope's unit, newest first."""
        ...

    def get(self, submission_id: int) -> Submission | None: ...

    def decide(self, submission_id: int, approve: bool, by: str, note: str) -> Submission:
        """Approve, or send back with ``note``; ``ApprovalError`` when not waiting."""
        ...


def approver_unit(h: Hierarchy, unit: str, period: str) -> str:
    """The unit that approves ``unit``'s report for month ``period``."""
    at = date(int(period[:4]), int(period[5:7]), 1)
    try:
        if h.tier_of(unit) is Tier.PROVINCE:
            return NATIONAL_CODE
        parent = h.parent(unit, at)
    except HierarchyError:
        parent = None
    if parent is None:
        raise ApprovalError(f"{unit} has no unit above it in {period}")
    return parent.code


_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit TEXT NOT NULL, period TEXT NOT NULL, approver TEXT NOT NULL,
    status TEXT NOT NULL, submitted_by TEXT NOT NULL, submitted_at REAL NOT NULL,
    decided_by TEXT, decided_at REAL, note TEXT
);
CREATE INDEX IF NOT EXISTS submissions_approver ON submissions (approver, status);
"""
_COLS = "id, unit, period, status, submitted_by, submitted_at, decided_by, decided_at, note"


def _row(r: tuple[object, ...]) -> Submission:
    return Submission(
        int(str(r[0])), str(r[1]), str(r[2]), str(r[3]),  # type: ignore[arg-type]
        str(r[4]), float(str(r[5])),
        None if r[6] is None else str(r[6]), None if r[7] is None else float(str(r[7])),
        None if r[8] is None else str(r[8]),
    )  # fmt: skip


class LocalApprovals:
    """STAND-IN approval backend (see the module docstring): SQLite, no lock, no snapshot."""

    supports_as_submitted = False

    def __init__(
        self, db: Database, hierarchy: Hierarchy, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        with self.db.transaction() as con:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
        self.h = hierarchy
        self.clock = clock

    def submit(self, unit: str, period: str, by: str) -> Submission:
        """A unit submits its month (stand-in for the signed submission event)."""
        approver = approver_unit(self.h, unit, period)
        with self.db.transaction() as con:
            con.execute(
                "UPDATE submissions SET status = 'returned', note = 'superseded' "
                "WHERE unit = ? AND period = ? AND status = 'submitted'",
                (unit, period),
            )
            cur = con.execute(
                "INSERT INTO submissions (unit, period, approver, status, submitted_by, "
                "submitted_at) VALUES (?, ?, ?, 'submitted', ?, ?)",
                (unit, period, approver, by, self.clock()),
            )
            sid = int(cur.lastrowid or 0)
        got = self.get(sid)
        assert got is not None
        return got

    def waiting_for(self, scope: Scope, h: Hierarchy) -> list[Submission]:
        rows = self.db.query(
            f"SELECT {_COLS} FROM submissions WHERE approver = ? AND status = 'submitted' "
            "ORDER BY period DESC, unit",
            (scope.home,),
        )
        return [_row(r) for r in rows]

    def recent(self, scope: Scope, h: Hierarchy, limit: int = 50) -> list[Submission]:
        rows = self.db.query(
            f"SELECT {_COLS} FROM submissions WHERE approver = ? AND status <> 'submitted' "
            "ORDER BY decided_at DESC LIMIT ?",
            (scope.home, limit),
        )
        return [_row(r) for r in rows]

    def get(self, submission_id: int) -> Submission | None:
        rows = self.db.query(f"SELECT {_COLS} FROM submissions WHERE id = ?", (submission_id,))
        return _row(rows[0]) if rows else None

    def decide(self, submission_id: int, approve: bool, by: str, note: str) -> Submission:
        if not approve and not note.strip():
            raise ApprovalError("say why the report is sent back")
        changed = self.db.execute(
            "UPDATE submissions SET status = ?, decided_by = ?, decided_at = ?, note = ? "
            "WHERE id = ? AND status = 'submitted'",
            ("approved" if approve else "returned", by, self.clock(), note[:1000] or None,
             submission_id),
        )  # fmt: skip
        if changed == 0:
            raise ApprovalError(f"submission {submission_id} is not waiting for a decision")
        got = self.get(submission_id)
        assert got is not None
        return got
