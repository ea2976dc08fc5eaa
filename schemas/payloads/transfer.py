"""Moving a person's record to another station (``person_transfer``).

A person record is held by the station that created it: only that station may change or
delete it (docs/contract.md §3, "Who holds a record"). When the person moves to another
commune, the station that holds the record releases it with a ``person_transfer`` event; once
accepted, the receiving station holds the person record and the releasing one no longer does.
The releasing station signs it (it is the one that can prove it holds the record; a receiving
station could not, so a transfer it signed would be a way to take any record). A transfer is
final (``record_version`` 1, never deleted): a mistake is undone by a transfer back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.canonical import MAX_SAFE_INTEGER
from schemas.fields import CommuneCode, HealthId, PastDate, Payload


class PersonTransferV1(Payload):
    """person_transfer/v1. Record id ``<health id>:<local id>``, key the health id."""

    health_id: HealthId
    to_station: CommuneCode = Field(description="the station that holds the record afterwards")
    transfer_date: PastDate
    person_record_version: int = Field(
        ge=1,
        le=MAX_SAFE_INTEGER,
        description="record_version of the person record when released (the last one the "
        "releasing station sent); the receiving station continues above it",
    )
    reason: Literal["moved", "registration_error", "other"] = "moved"
