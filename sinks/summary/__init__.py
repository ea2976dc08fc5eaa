"""The patient summary: a person's records from every station of a province, as a FHIR R4
``document`` Bundle in the shape of the International Patient Summary (IPS).

    >>> con = open_catalog(root, "province", province="04")      # doctest: +SKIP
    >>> bundle = patient_summary(
    ...     con, "04",
    ...     SummaryRequest(health_id="0123456789", clinician="bs-0042", facility="01234",
    ...                    purpose="continuity of care: patient seen today"),
    ...     access_log=AccessLog(path))

One call, one access-log line (``kind: patient_summary``: clinician, facility, purpose, the
person asked about, outcome, which stations' records were shown). The requesting facility
must be a source of the province at the time of the request (``AccessDenied`` otherwise,
logged as refused). The Bundle is validated with ``fhir.resources`` (R4B) before it is
returned. Sections: Composition.section in IPS order — problems (encounter diagnoses,
notifiable cases, the chronic register), allergies (none recorded), medications,
immunizations, vital signs, results, history of pregnancy, recent encounters.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import duckdb

from schemas.hierarchy import Hierarchy, HierarchyError
from sinks.catalog import snapshot
from sinks.reports.exceptions import AccessDenied, BadRequest, ReportError
from sinks.summary.document import build_document
from sinks.summary.records import SUMMARY_TYPES, person_records

__all__ = ["AccessRecorder", "SummaryNotFound", "SummaryRequest", "patient_summary"]

_HEALTH_ID_RE = re.compile(r"^[0-9]{10}$")
_CLINICIAN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}$")
_SOURCE_RE = re.compile(r"^[0-9]{5}$")
MAX_PURPOSE: Final = 200


class AccessRecorder(Protocol):
    """Where a summary request is logged: a :class:`sinks.reports.AccessLog`, or the
    portal's writer of the same log (which adds the account)."""

    def append(self, entry: dict[str, object]) -> object:
        """Log ``entry`` durably before the answer goes out (raise if it cannot)."""
        ...


class SummaryNotFound(ReportError):
    """The store holds no record of this person."""


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    """Who asks for whose summary, from where and why (all logged)."""

    health_id: str
    clinician: str
    facility: str
    purpose: str

    def check(self) -> None:
        if not _HEALTH_ID_RE.match(self.health_id) or self.health_id == "0000000000":
            raise BadRequest(f"health id must be 10 digits, got {self.health_id!r}")
        if not _CLINICIAN_RE.match(self.clinician):
            raise BadRequest(f"bad clinician id {self.clinician!r}")
        if not _SOURCE_RE.match(self.facility):
            raise BadRequest(f"facility must be a 5-digit source code, got {self.facility!r}")
        if not self.purpose.strip() or len(self.purpose) > MAX_PURPOSE:
            raise BadRequest(f"state the purpose (1–{MAX_PURPOSE} characters)")


def _check_facility(h: Hierarchy, request: SummaryRequest, province: str, at: datetime) -> None:
    try:
        placed = h.lookup(request.facility, at).province.code
    except HierarchyError as exc:
        raise AccessDenied(f"access refused: facility {request.facility}: {exc.message}") from None
    if placed != province:
        raise AccessDenied(
            f"access refused: facility {request.facility} is in province {placed}, "
            f"not {province}: it may read only its own province's records"
        )


def patient_summary(
    con: duckdb.DuckDBPyConnection,
    province: str,
    request: SummaryRequest,
    *,
    access_log: AccessRecorder,
    hierarchy: Hierarchy | None = None,
    now: datetime | None = None,
    recent: int = 20,
) -> dict[str, Any]:
    """The IPS-shaped FHIR Bundle of ``request.health_id`` from ``con``, the record-level
    catalog of ``province`` (``open_catalog(root, "province", province=province)``).

    ``hierarchy`` places the requesting facility (default: the reference hierarchy; pass one
    with registered facilities, ``schemas.facilities``); ``recent`` bounds the encounters
    and measurements shown. Raises ``BadRequest``, ``AccessDenied`` or ``SummaryNotFound``
    (each logged)."""
    started = time.monotonic()
    at = now or datetime.now(UTC)
    entry: dict[str, object] = {
        "kind": "patient_summary",
        "principal": f"clinician:{request.clinician}",
        "clinician": request.clinician,
        "facility": request.facility,
        "purpose": request.purpose[:MAX_PURPOSE],
        "subject": request.health_id,
        "tier": "province",
        "unit": province,
    }
    try:
        request.check()
        _check_facility(hierarchy or Hierarchy.default(), request, province, at)
        # one listing of the store for all the person's record types, deciding theirs
        with snapshot(con, reads=SUMMARY_TYPES):
            records = person_records(con, request.health_id)
        if not records:
            raise SummaryNotFound(f"no record of {request.health_id} in province {province}")
        bundle = build_document(
            records, request.health_id, province, at, str(uuid.uuid4()), recent=recent
        )
    except AccessDenied as exc:
        access_log.append({**entry, "outcome": "refused", "reason": exc.message})
        raise
    except SummaryNotFound as exc:
        access_log.append({**entry, "outcome": "not_found", "reason": exc.message})
        raise
    except Exception as exc:
        access_log.append({**entry, "outcome": "error", "reason": str(exc)[:500]})
        raise
    access_log.append(
        {
            **entry,
            "outcome": "allowed",
            "records": len(records),
            "stations": sorted({r.station_code for r in records}),
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return bundle
