"""The clinicians' patient summary: ``/patient`` over :func:`sinks.summary.patient_summary`.

A clinician account (role ``clinician``) has a facility (a station, or a hospital of the
facility registry). Its look-ups read the record-level store of **the facility's province**
(and of the pre-2025 provinces merged into it), through :class:`StoreAccess` like every
other read of the portal; the library checks again that the facility is in that province.
Each look-up states its purpose, and each one, answered, refused, not found or failed, is one
access-log entry (the library's entry: clinician, facility, purpose, the person asked about,
outcome, which stations' records were shown; plus the account), written before the answer.

:class:`StoreSummaries` is what :class:`~sinks.portal.service.Portal` uses; the hook stays
swappable (``Portal(patient_summary=...)``) for a summary service elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.portal.scope import Account, Role, Scope
from sinks.portal.stores import StoreAccess
from sinks.reports.exceptions import AccessDenied, BadRequest
from sinks.summary import (
    MAX_PURPOSE,
    AccessRecorder,
    SummaryNotFound,
    SummaryRequest,
    patient_summary,
)
from sinks.summary.records import SUMMARY_TYPES

__all__ = ["PatientSummary", "StoreSummaries", "SummaryUnavailable"]


class SummaryUnavailable(RuntimeError):
    """The summary service failed or is not reachable."""


class PatientSummary(Protocol):
    """``(clinician account, health id, purpose, where to log) -> FHIR Bundle``. Logs every
    call through ``log``, then raises ``LookupError`` (no such patient), ``PermissionError``
    (the clinician may not see them), ``ValueError`` (a bad health id or purpose) or
    :class:`SummaryUnavailable`."""

    def __call__(
        self, account: Account, health_id: str, purpose: str, log: AccessRecorder
    ) -> dict[str, Any]: ...


class StoreSummaries:
    """Patient summaries from the portal's stores (see the module docstring)."""

    def __init__(self, stores: StoreAccess, hierarchy: Hierarchy) -> None:
        self.stores = stores
        self.h = hierarchy

    def province_of(self, facility: str, at: datetime) -> str:
        """The province ``facility`` is in at ``at`` (``PermissionError`` when it is not a
        station or registered facility then)."""
        try:
            unit = self.h.lookup(facility, at)
        except HierarchyError as exc:
            raise PermissionError(f"facility {facility}: {exc.message}") from None
        return unit.province.code

    def __call__(
        self,
        account: Account,
        health_id: str,
        purpose: str,
        log: AccessRecorder,
        *,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        at = now or datetime.now(UTC)
        request = SummaryRequest(health_id, account.username, account.facility or "", purpose)
        once = _Once(log)
        try:
            if not account.has(Role.CLINICIAN) or not account.facility:
                raise PermissionError("only a clinician account with a facility may look up")
            province = self.province_of(account.facility, at)
            key = self.stores.key(Scope(Tier.PROVINCE, province), "province", at.date())
            with self.stores.cursor(key, reads=SUMMARY_TYPES) as con:
                return patient_summary(
                    con, province, request, access_log=once, hierarchy=self.h, now=at
                )
        except AccessDenied as exc:
            raise PermissionError(exc.message) from None
        except SummaryNotFound as exc:
            raise LookupError(exc.message) from None
        except BadRequest as exc:
            raise ValueError(exc.message) from None
        except PermissionError as exc:  # refused before the library was reached
            once.fallback(request, "refused", str(exc))
            raise
        except Exception as exc:  # e.g. the store could not be opened
            once.fallback(request, "error", str(exc)[:500])
            raise SummaryUnavailable(str(exc)) from exc


class _Once:
    """The request's log: the library's entry, or (when the request failed before the
    library logged it) one entry with the library's fields."""

    def __init__(self, log: AccessRecorder) -> None:
        self.log = log
        self.logged = False

    def append(self, entry: dict[str, object]) -> object:
        written = self.log.append(entry)
        self.logged = True
        return written

    def fallback(self, request: SummaryRequest, outcome: str, reason: str) -> None:
        if self.logged:
            return
        self.append(
            {
                "kind": "patient_summary",
                "clinician": request.clinician,
                "facility": request.facility,
                "purpose": request.purpose[:MAX_PURPOSE],
                "subject": request.health_id[:32],
                "outcome": outcome,
                "reason": reason,
            }
        )
