"""Approval of stations' monthly reports in the portal, over the sign-off API.

A station head submits the station's month (a signed ``report_submission`` record through the
pipeline); the unit above (the station's district / regional centre, or its province)
approves it or sends it back; the province locks the month. This module is the portal's view
of :class:`sinks.signoff.service.Signoff`:

- :meth:`Approvals.waiting_for`: the submitted station-months of the last ``months`` ended
  months under the account's unit that nobody approved yet;
- :meth:`Approvals.decide`: approve or send back one of them, signed with the account's key
  (:class:`~sinks.portal.signing.ApproverKeys`), checked against the approvers' registry and
  published to ``signoff.decisions``; it takes effect when the broker confirms it. The store
  shows it once the ``signoff`` sink wrote it (seconds): until then the decision is kept
  here, so the page does not offer the month again;
- :meth:`Approvals.recent`: the decisions of those months, newest first.

Reports "as submitted" (figures frozen at approval) read the same ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.signoff import ApproverRegistry
from sinks.portal.scope import Account
from sinks.portal.signing import ApproverKeys, approver_roles
from sinks.portal.stores import StoreAccess
from sinks.reports import ReportConfig, ReportError
from sinks.reports.periods import add_months
from sinks.signoff.service import DecisionPublisher, Signoff, StationStatus

#: The current views the sign-off service reads (``sinks.signoff.service``): what a request's
#: snapshot decides.
SIGNOFF_READS = ("report_submission",)

__all__ = ["ApprovalError", "Approvals", "Submission"]

Status = Literal["submitted", "approved", "sent_back"]

#: How long a decision the store does not show yet is remembered (the sink writes it within
#: seconds; a sink that is down for longer must not hide a month for ever).
_PENDING_S = 600.0


class ApprovalError(ValueError):
    """An impossible decision (not waiting, not yours, no broker), with the reason."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One station-month and its sign-off state."""

    station: str
    name: str
    period: str  # YYYY-MM
    status: Status
    submitted_at: datetime | None
    on_time: bool
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None

    @property
    def key(self) -> str:
        return f"{self.station}/{self.period}"


def _submission(row: StationStatus, period: str) -> Submission | None:
    state = row.state
    if state == "missing":
        return None
    decided = row.approved_at if state == "approved" else row.sent_back_at
    return Submission(
        station=row.station,
        name=row.name,
        period=period,
        status="approved"
        if state == "approved"
        else "sent_back"
        if state == "sent_back"
        else "submitted",
        submitted_at=row.last_submitted_at,
        on_time=row.on_time,
        decided_by=row.approved_by if state == "approved" else None,
        decided_at=decided if state != "submitted" else None,
        note=row.sent_back_reason if state == "sent_back" else None,
    )


class Approvals:
    """The approval pages' backend (see the module docstring)."""

    def __init__(
        self,
        stores: StoreAccess,
        hierarchy: Hierarchy,
        keys: ApproverKeys,
        *,
        registry: ApproverRegistry | None,
        publisher: Callable[[], DecisionPublisher] | None,
        config: ReportConfig | None = None,
        months: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stores = stores
        self.h = hierarchy
        self.keys = keys
        self.registry = registry
        self._make_publisher = publisher
        self._publisher: DecisionPublisher | None = None
        self.config = config or ReportConfig()
        self.months = months
        self.clock = clock
        self._pending: dict[tuple[str, str], tuple[float, Submission]] = {}
        self._lock = threading.Lock()

    def periods(self) -> list[str]:
        """The ended months the pages show, newest first."""
        now = datetime.now(VN_TZ)
        this = f"{now.year:04d}-{now.month:02d}"
        return [add_months(this, -k) for k in range(1, self.months + 1)]

    def _publisher_or_none(self) -> DecisionPublisher | None:
        with self._lock:
            if self._publisher is None and self._make_publisher is not None:
                self._publisher = self._make_publisher()
            return self._publisher

    def _states(self, account: Account) -> list[Submission]:
        """Every station-month of :meth:`periods` under the account's unit with a submission."""
        if not approver_roles(account):
            return []
        out: list[Submission] = []
        key = self.stores.key(account.scope, "province", date.today())
        with self.stores.cursor(key, reads=SIGNOFF_READS) as con:
            svc = Signoff(con, self.h, config=self.config)
            for period in self.periods():
                try:
                    status = svc.status(str(account.scope), account.scope.code, period)
                except ReportError:
                    continue  # the unit did not exist then
                out += [s for row in status.stations if (s := _submission(row, period))]
        return out

    def _merge_pending(self, states: list[Submission]) -> list[Submission]:
        """The store's states, with this portal's decisions the store does not show yet."""
        now = self.clock()
        with self._lock:
            for k, (at, _s) in list(self._pending.items()):
                if now - at > _PENDING_S:
                    del self._pending[k]
            pending = dict(self._pending)
        merged = []
        for s in states:
            hit = pending.get((s.station, s.period))
            if hit is not None and s.status == "submitted":
                decided = hit[1]
                if (
                    s.submitted_at is None
                    or decided.decided_at is None
                    or (s.submitted_at <= decided.decided_at)
                ):
                    merged.append(decided)
                    continue
            if hit is not None:  # the store caught up (or the station resubmitted)
                with self._lock:
                    self._pending.pop((s.station, s.period), None)
            merged.append(s)
        return merged

    def waiting_for(self, account: Account) -> list[Submission]:
        """Submitted station-months the account may decide, oldest month first."""
        states = self._merge_pending(self._states(account))
        waiting = [s for s in states if s.status == "submitted"]
        return sorted(waiting, key=lambda s: (s.period, s.station))

    def recent(self, account: Account, limit: int = 50) -> list[Submission]:
        """Decided station-months under the account's unit, newest decision first."""
        states = self._merge_pending(self._states(account))
        decided = [s for s in states if s.status != "submitted"]
        far = datetime.min.replace(tzinfo=UTC)
        return sorted(decided, key=lambda s: s.decided_at or far, reverse=True)[:limit]

    def decide(
        self, account: Account, station: str, period: str, approve: bool, note: str
    ) -> Submission:
        """Approve, or send back with ``note``, a station-month waiting for ``account``;
        :class:`ApprovalError` with the reason when that is not possible."""
        if not approver_roles(account):
            raise ApprovalError(f"{account.username} approves nothing (scope {account.scope})")
        waiting = {(s.station, s.period): s for s in self.waiting_for(account)}
        current = waiting.get((station, period))
        if current is None:
            raise ApprovalError(f"{station} {period} is not waiting for {account.username}")
        if not approve and not note.strip():
            raise ApprovalError("say why the report is sent back")
        if self._publisher_or_none() is None:
            raise ApprovalError(
                "decisions cannot be sent: the portal has no Kafka broker (KAFKA_BOOTSTRAP)"
            )
        key = self.keys.signing_key(account.username)
        store = self.stores.key(account.scope, "province", date.today())
        with self.stores.cursor(store, reads=SIGNOFF_READS) as con:
            svc = Signoff(
                con, self.h, self._publisher_or_none(), registry=self.registry, config=self.config
            )
            try:
                if approve:
                    done = svc.approve(
                        str(account.scope), station, period, approver=account.username, key=key
                    )
                else:
                    done = svc.send_back(
                        str(account.scope), station, period, reason=note[:500],
                        approver=account.username, key=key,
                    )  # fmt: skip
            except ReportError as exc:
                raise ApprovalError(exc.message) from None
        decided = Submission(
            station=station,
            name=current.name,
            period=period,
            status="approved" if approve else "sent_back",
            submitted_at=current.submitted_at,
            on_time=current.on_time,
            decided_by=account.username if approve else None,
            decided_at=done.received,
            note=None if approve else note[:500],
        )
        with self._lock:
            self._pending[(station, period)] = (self.clock(), decided)
        return decided
