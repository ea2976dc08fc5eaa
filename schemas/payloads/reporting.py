"""A station's monthly report submission: the station head signs off the station's month.

Record id ``<station>:submission:<YYYY-MM>``, key ``<station>:submission``. A resubmission
(after the unit above sent the month back) is a new version of the same record. Only a key
with the ``station_head`` role may sign it (checked by the validator). The unit above
approves and the province locks through the sign-off ledger (``schemas.signoff``).
"""

from __future__ import annotations

from pydantic import Field

from schemas.fields import Payload, Period


class ReportSubmissionV1(Payload):
    """report_submission/v1: "the station's report for ``period`` is complete" (the period
    cannot be a month that has not begun)."""

    period: Period
    remarks: str | None = Field(default=None, max_length=500)
