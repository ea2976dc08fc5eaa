"""Monthly resource snapshots of a station: staff by cadre, beds, equipment, medicine stock.

Each snapshot is the state *as of* a date for a month ``period``; reports take the last value
in a period. Record id ``<station>:<resource>:<period>``, key ``<station>:<resource>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from schemas.fields import Count, EquipmentCode, MedicineCode, PastDate, Payload, Period


class _Snapshot(Payload):
    period: Period
    as_of: PastDate

    @model_validator(mode="after")
    def _as_of_in_or_after_period(self, info: ValidationInfo) -> Any:
        if self.as_of.isoformat()[:7] < self.period:
            raise PydanticCustomError(
                "inconsistent",
                "as_of {a} is before the period {p}",
                {"a": self.as_of.isoformat(), "p": self.period},
            )
        return self


class StaffCounts(Payload):
    doctor: Count
    assistant_doctor: Count
    ob_paediatric_assistant_doctor: Count
    nurse: Count
    midwife: Count
    pharmacist: Count
    village_health_worker: Count


class StaffSnapshotV1(_Snapshot):
    """staff_snapshot/v1: head count by cadre."""

    counts: StaffCounts


class BedSnapshotV1(_Snapshot):
    """bed_snapshot/v1."""

    beds_total: Count
    beds_occupied: Count | None = None

    @model_validator(mode="after")
    def _occupied_le_total(self) -> BedSnapshotV1:
        if self.beds_occupied is not None and self.beds_occupied > self.beds_total:
            raise PydanticCustomError("inconsistent", "more beds occupied than beds")
        return self


class EquipmentItem(Payload):
    item: EquipmentCode
    quantity: Count
    working: Count

    @model_validator(mode="after")
    def _working_le_quantity(self) -> EquipmentItem:
        if self.working > self.quantity:
            raise PydanticCustomError(
                "inconsistent", "{i}: more working than present", {"i": self.item}
            )
        return self


class EquipmentSnapshotV1(_Snapshot):
    """equipment_snapshot/v1: each item's quantity and how many work."""

    items: list[EquipmentItem] = Field(max_length=200)


class StockItem(Payload):
    medicine: MedicineCode
    on_hand: Count
    stock_out: bool  # no usable stock at any time during the period (WHO tracer definition)


class StockSnapshotV1(_Snapshot):
    """stock_snapshot/v1: essential-medicine stock on hand at ``as_of``."""

    items: list[StockItem] = Field(max_length=500)
