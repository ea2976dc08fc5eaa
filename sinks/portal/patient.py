"""MERGE HOOK (interop helper): the clinicians' patient summary.

The ``interop`` helper is building the cross-station patient summary (IPS-shaped FHIR) as a
library function. The portal's ``/patient`` page (role ``clinician``, scoped to the
account's facility) calls whatever :data:`PatientSummary` it was given; until the lead wires
the real function at merge (``create_app(patient_summary=...)``), :func:`not_connected`
answers that the feature is not there. Every look-up is written to the access log by the
page, found or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sinks.portal.scope import Account

__all__ = ["PatientSummary", "SummaryUnavailable", "not_connected"]


class SummaryUnavailable(RuntimeError):
    """The summary service is not wired (or not reachable)."""


#: ``(clinician account, health id) -> FHIR Bundle (dict)``; raise ``LookupError`` when
#: there is no such patient, ``PermissionError`` when the clinician may not see them.
PatientSummary = Callable[[Account, str], dict[str, Any]]


def not_connected(account: Account, health_id: str) -> dict[str, Any]:
    raise SummaryUnavailable("the patient summary is not connected yet")
