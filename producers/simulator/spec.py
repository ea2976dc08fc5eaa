"""What a station produces: a :class:`Spec` (a change before numbering and signing), and the
station's local time (Vietnam, UTC+7) that its records' dates are in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

VN_OFFSET: Final = timedelta(hours=7)


@dataclass(slots=True)
class Spec:
    """A change before numbering and signing."""

    time: datetime
    record_type: str
    record_id: str
    op: str
    version: int
    data: dict[str, Any] | None
    signer_n: int


def local_date(t: datetime) -> date:
    """The station's calendar day of the UTC time ``t``."""
    return (t + VN_OFFSET).date()
