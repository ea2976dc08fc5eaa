"""A station's monthly report submission: the station head signs off the station's month.

Record id ``<station>:submission:<YYYY-MM>``, key ``<station>:submission``. A resubmission
(after the unit above sent the month back) is a new version of the same record. The unit
above approves and the province locks through the sign-off ledger (``sinks.signoff``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from schemas.fields import Payload, Period, now_from, today_vn


class ReportSubmissionV1(Payload):
    """report_submission/v1: "the station's report for ``period`` is complete"."""

    period: Period
    remarks: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _period_not_in_future(self, info: ValidationInfo) -> Any:
        today = today_vn(now_from(info))
        if self.period > f"{today.year:04d}-{today.month:02d}":
            raise PydanticCustomError("future_date", "period {p} has not begun", {"p": self.period})
        return self
