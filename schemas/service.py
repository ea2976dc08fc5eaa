"""Service dates: when the thing a record describes happened, as opposed to when it was entered.

Every flow indicator is attributed to the month of its record's **service date** (the visit,
the dose, the delivery, the death, the onset, the follow-up, the snapshot's period); the event
time (``ce_time``, when the change was entered at the station) and the broker's receive time
feed only timeliness and revisions. A correction keeps its record in the service month its
after-image says, so correcting a phone number never moves a record into another month.

``service_month(record_type, data, event_month)`` is what the validator writes into every tier
record (``service_month``) and what the live aggregates count by. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from schemas.registry import RecordType

__all__ = ["SERVICE_DATE_FIELD", "service_month"]

#: The payload field holding each record type's service or occurrence date (``YYYY-MM-DD``),
#: or its month (``YYYY-MM``) for the station-scoped monthly records.
SERVICE_DATE_FIELD: Final[dict[str, str]] = {
    RecordType.PERSON.value: "registration_date",
    RecordType.ENCOUNTER.value: "encounter_date",
    RecordType.IMMUNIZATION.value: "date",
    RecordType.CHRONIC_FOLLOWUP.value: "visit_date",
    RecordType.CHRONIC_ENROLMENT.value: "enrolment_date",
    RecordType.ANTENATAL_VISIT.value: "visit_date",
    RecordType.BIRTH.value: "birth_date",
    RecordType.DEATH.value: "death_date",
    RecordType.DISEASE_CASE.value: "onset_date",
    RecordType.STAFF_SNAPSHOT.value: "period",
    RecordType.BED_SNAPSHOT.value: "period",
    RecordType.EQUIPMENT_SNAPSHOT.value: "period",
    RecordType.STOCK_SNAPSHOT.value: "period",
    RecordType.REPORT_SUBMISSION.value: "period",
    RecordType.MEDICINE_DISPENSED.value: "dispensed_date",
    RecordType.PERSON_TRANSFER.value: "transfer_date",
}
assert set(SERVICE_DATE_FIELD) == {rt.value for rt in RecordType}, "a record type has no date"


def service_month(record_type: str, data: Mapping[str, Any] | None, event_month: str) -> str:
    """``YYYY-MM`` of the record's service date; ``event_month`` when the after-image has none
    (a delete, or a person record without ``registration_date``).

    ``data`` is a validated after-image (current major, JSON-shaped), so the field, when
    present, is an ISO date or month string.
    """
    if data is None:
        return event_month
    value = data.get(SERVICE_DATE_FIELD.get(record_type, ""))
    if isinstance(value, str) and len(value) >= 7:
        return value[:7]
    return event_month
