"""The sign-off API: a month's status, approve, send back, lock (the CLI and the portal).

Who may do what (``principal`` is the authenticated account's scope, as for reports):

- ``approve`` / ``send_back`` a station-month: a principal of the station's district (regional
  centre) or province at the month's end; the station must have submitted the month (its
  head's signed ``report_submission`` is in the store) and the province-month must not be
  locked. Approving twice is refused (send it back first).
- ``lock`` a province-month: a principal of that province; refused while a submitted
  station-month waits for approval, unless ``force`` (then the month locks as it is).

Each decision is signed with the approver's key (``schemas.signoff``), checked against the
approvers' registry the ``signoff`` sink uses (so a decision the sink would dead-letter is
refused here, with the reason, instead of vanishing) and published to the
``signoff.decisions`` topic by a :class:`DecisionPublisher`, which returns only when the
broker confirmed it (acks=all): it is then durable. The ``signoff`` sink verifies and stores
it; the store catches up within seconds, so :meth:`Signoff.status` may lag a fresh decision.
Every call, allowed or refused, is appended to the access log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import duckdb
from nacl.signing import SigningKey

from schemas.hierarchy import VN_TZ, Hierarchy, HierarchyError, Tier
from schemas.reasons import ContractViolation
from schemas.signoff import Action, ApproverRegistry, SignoffDecision, check_decision, make_decision
from sinks.reports.access import AccessLog, Principal, check_access, parse_principal
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import AccessDenied, BadRequest, ReportError
from sinks.reports.periods import month_end, parse_period
from sinks.signoff.ledger import Ledger, read_ledger

__all__ = [
    "Decided",
    "DecisionPublisher",
    "MonthStatus",
    "Signoff",
    "SignoffRefused",
    "StationStatus",
]

logger = logging.getLogger(__name__)


class SignoffRefused(ReportError):
    """The decision is not allowed in the month's current state (not submitted, locked …)."""

    exit_code = 4
    label = "refused:"


class DecisionPublisher(Protocol):
    """Makes a signed decision durable; returns when the broker received it."""

    def publish(self, decision: SignoffDecision) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision in effect: signed, and received by the broker at ``received``."""

    decision: SignoffDecision
    received: datetime


@dataclass(frozen=True, slots=True)
class StationStatus:
    """One expected station-month."""

    station: str
    name: str
    district: str
    province: str
    submitted_at: datetime | None
    last_submitted_at: datetime | None
    on_time: bool
    approved_at: datetime | None
    approved_by: str | None
    sent_back_at: datetime | None
    sent_back_reason: str | None

    @property
    def state(self) -> str:
        """``missing`` | ``submitted`` | ``sent_back`` | ``approved``."""
        if self.approved_at is not None:
            return "approved"
        if self.sent_back_at is not None and (
            self.last_submitted_at is None or self.sent_back_at >= self.last_submitted_at
        ):
            return "sent_back"
        return "submitted" if self.submitted_at is not None else "missing"


@dataclass(frozen=True, slots=True)
class MonthStatus:
    """A unit's stations for one month, and its provinces' locks."""

    unit: str
    period: str
    deadline: datetime
    stations: tuple[StationStatus, ...]
    locks: dict[str, datetime]

    def count(self, state: str) -> int:
        return sum(1 for s in self.stations if s.state == state)


class Signoff:
    """Sign-off over one catalog connection (see the module docstring)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        hierarchy: Hierarchy,
        publisher: DecisionPublisher | None = None,
        *,
        registry: ApproverRegistry | None = None,
        config: ReportConfig | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.con = con
        self.h = hierarchy
        self.publisher = publisher
        self.registry = registry
        self.config = config or ReportConfig()
        self.log = access_log

    # ---- reading ----------------------------------------------------------------------------
    def status(self, principal: str | Principal, unit: str, period: str) -> MonthStatus:
        """Every station expected to report for ``period`` under ``unit``."""
        who = _principal(principal)
        month = _month(period)
        end = month_end(month)
        try:
            check_access(self.h, who, unit, end)
            stations = self.h.stations_in(unit, end)
        except HierarchyError:
            raise BadRequest(f"unknown unit {unit!r} in {month}") from None
        self._log(who, "status", unit, month, "allowed")
        ledger = read_ledger(self.con, [month])
        submitted = self._submitted(month)
        deadline = self.config.deadline("station", month)
        out = []
        for code in stations:
            pl = self.h.lookup(code, end)
            got, last = submitted.get(code, (None, None))
            sm = ledger.stations.get((code, month))
            out.append(
                StationStatus(
                    station=code,
                    name=pl.station.name,
                    district=pl.district.code,
                    province=pl.province.code,
                    submitted_at=got,
                    last_submitted_at=last,
                    on_time=got is not None and got < deadline,
                    approved_at=sm.approved_at if sm and got else None,
                    approved_by=sm.approved_by if sm and got else None,
                    sent_back_at=sm.sent_back_at if sm else None,
                    sent_back_reason=sm.sent_back_reason if sm else None,
                )
            )
        locks = {p: t for (p, m), (t, _by) in ledger.locks.items() if m == month}
        return MonthStatus(unit, month, deadline, tuple(out), locks)

    def _submitted(
        self, month: str, station: str | None = None
    ) -> dict[str, tuple[datetime, datetime]]:
        """Station → when its live submission for ``month`` first and last reached the
        broker (a resubmission after a send-back is a new version)."""
        where = "s.period = $month" + (" AND s.station_code = $station" if station else "")
        params: dict[str, object] = {"month": month}
        if station:
            params["station"] = station
        rows = self.con.execute(
            "SELECT s.station_code, min(c.received_time), max(c.received_time) "
            "FROM report_submission s "
            "JOIN report_submission_changes c USING (record_id) "
            f"WHERE {where} GROUP BY 1",
            params,
        ).fetchall()
        return {str(code): (first, last) for code, first, last in rows}

    # ---- deciding ---------------------------------------------------------------------------
    def approve(
        self, principal: str | Principal, station: str, period: str, *, approver: str,
        key: SigningKey, key_id: str | None = None,
    ) -> Decided:  # fmt: skip
        """Approve a submitted station-month (signed with ``key``, the approver's key
        ``key_id`` in the approvers' registry)."""
        return self._station_decision(
            Action.APPROVE, principal, station, period, approver, (key, key_id)
        )

    def send_back(
        self, principal: str | Principal, station: str, period: str, *, reason: str,
        approver: str, key: SigningKey, key_id: str | None = None,
    ) -> Decided:  # fmt: skip
        """Send a submitted station-month back to the station, saying why."""
        if not reason.strip():
            raise BadRequest("a send-back needs a reason")
        return self._station_decision(
            Action.SEND_BACK, principal, station, period, approver, (key, key_id), reason.strip()
        )

    def lock(
        self, principal: str | Principal, province: str, period: str, *, approver: str,
        key: SigningKey, key_id: str | None = None, force: bool = False,
    ) -> Decided:  # fmt: skip
        """Lock a province-month: its figures as submitted no longer change."""
        who = _principal(principal)
        month = _month(period)
        try:
            if who.tier is not Tier.PROVINCE or who.code != province:
                raise AccessDenied(f"access refused: only province {province} locks its months")
            if self.h.tier_of(province) is not Tier.PROVINCE:
                raise BadRequest(f"{province} is not a province")
            ledger = read_ledger(self.con, [month], [province])
            if (province, month) in ledger.locks:
                raise SignoffRefused(f"province {province} already locked {month}")
            pending = self._pending(province, month, ledger)
            if pending and not force:
                raise SignoffRefused(
                    f"{len(pending)} submitted station report(s) of {month} wait for approval "
                    f"(e.g. {', '.join(pending[:5])}); approve or send them back, or force"
                )
            decision = make_decision(
                Action.LOCK, period=month, province=province, unit=province, approver=approver
            ).signed(key, key_id)
            done = self._publish(decision)
        except ReportError as exc:
            self._log(who, "lock", province, month, _outcome(exc), exc.message)
            raise
        self._log(who, "lock", province, month, "allowed")
        return done

    def _pending(self, province: str, month: str, ledger: Ledger) -> list[str]:
        """Stations whose submission waits for the unit above: submitted (again, after a
        send-back) and not approved."""
        submitted = self._submitted(month)
        out = []
        for s in self.h.stations_in(province, month_end(month)):
            if s not in submitted:
                continue
            state = ledger.stations.get((s, month))
            if state is None or (
                state.approved_at is None
                and (state.sent_back_at is None or state.sent_back_at < submitted[s][1])
            ):
                out.append(s)
        return out

    def _station_decision(
        self,
        action: Action,
        principal: str | Principal,
        station: str,
        period: str,
        approver: str,
        key: tuple[SigningKey, str | None],
        reason: str | None = None,
    ) -> Decided:
        who = _principal(principal)
        month = _month(period)
        end = month_end(month)
        try:
            try:
                pl = self.h.lookup_site(station, end)
            except HierarchyError:
                raise BadRequest(f"no station {station!r} in {month}") from None
            check_access(self.h, who, station, end)
            if who.tier is Tier.NATIONAL or who.code not in (pl.district.code, pl.province.code):
                raise AccessDenied(f"access refused: {who} is not the unit above station {station}")
            ledger = read_ledger(self.con, [month], [pl.province.code])
            if (pl.province.code, month) in ledger.locks:
                raise SignoffRefused(f"province {pl.province.code} locked {month}")
            if not self._submitted(month, station):
                raise SignoffRefused(f"station {station} has not submitted {month}")
            state = ledger.stations.get((station, month))
            if action is Action.APPROVE and state is not None and state.approved_at is not None:
                raise SignoffRefused(f"station {station}'s {month} is already approved")
            decision = make_decision(
                action,
                period=month,
                province=pl.province.code,
                station=station,
                unit=who.code,
                approver=approver,
                reason=reason,
            ).signed(*key)
            done = self._publish(decision)
        except ReportError as exc:
            self._log(who, action.value, station, month, _outcome(exc), exc.message)
            raise
        self._log(who, action.value, station, month, "allowed")
        return done

    def _publish(self, decision: SignoffDecision) -> Decided:
        if self.publisher is None:
            raise BadRequest("no publisher: this Signoff reads only")
        if self.registry is None:
            raise BadRequest("no approvers' registry: decisions are checked before they are sent")
        try:
            check_decision(decision, self.registry, self.h)  # now: the broker receives it later
        except ContractViolation as exc:
            raise AccessDenied(
                f"access refused: the approvers' registry (TUYEN_APPROVER_KEYS) refuses the "
                f"decision: {exc.message}"
            ) from None
        received = self.publisher.publish(decision)
        logger.info(
            "signoff decision action=%s station=%s province=%s period=%s approver=%s received=%s",
            decision.action.value,
            decision.station,
            decision.province,
            decision.period,
            decision.approver,
            received.isoformat(),
        )
        return Decided(decision, received)

    def _log(
        self, who: Principal, action: str, unit: str, month: str, outcome: str, reason: str = ""
    ) -> None:
        if self.log is None:
            return
        entry: dict[str, object] = {
            "principal": str(who),
            "kind": f"signoff:{action}",
            "unit": unit,
            "period": month,
            "outcome": outcome,
        }
        if reason:
            entry["reason"] = reason[:500]
        self.log.append(entry)


def _principal(p: str | Principal) -> Principal:
    return parse_principal(p) if isinstance(p, str) else p


def _month(period: str) -> str:
    got = parse_period(period)
    if got.first != got.last:
        raise BadRequest(f"sign-off is per month (YYYY-MM), not {period!r}")
    now = datetime.now(VN_TZ)
    if got.first >= f"{now.year:04d}-{now.month:02d}":
        raise BadRequest(f"{got.first} has not ended yet")
    return got.first


def _outcome(exc: ReportError) -> str:
    return "refused" if isinstance(exc, AccessDenied | SignoffRefused) else "error"
