"""Medicines dispensed to a person at one visit (thuốc cấp phát / kê đơn đã cấp).

One record per visit and facility: the lines of the Decision 130 table 2 (XML2, chỉ tiêu chi
tiết thuốc) without their prices and insurance shares. Record id ``<health id>:<local id>``;
an importer uses the visit's local id with a ``-rx`` suffix, so the record sits beside the
visit's ``encounter`` record and ``encounter_local_id`` links the two.
"""

from __future__ import annotations

from pydantic import Field

from schemas import codes
from schemas.fields import HealthId, MedicineCode, PastDate, Payload

#: A local id (the part of a record id after the health id).
LOCAL_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class DispensedItem(Payload):
    """One medicine line. ``medicine_code`` is the national active-ingredient code of the
    Ministry's shared code set (Bộ mã danh mục dùng chung, XML2 ``MA_THUOC``; format checked,
    the list itself is not shipped); ``essential_medicine`` names the item in the station
    tracer list (``schemas.codes.ESSENTIAL_MEDICINES``) when the sender knows it."""

    medicine_code: str = Field(
        pattern=codes.NATIONAL_MEDICINE_PATTERN, json_schema_extra={"x-code-list": "dmdc_thuoc"}
    )
    name: str = Field(min_length=1, max_length=255, pattern=r"\S")
    strength: str | None = Field(default=None, max_length=255)
    route: str | None = Field(
        default=None,
        pattern=codes.ROUTE_PATTERN,
        description="route of administration code (XML2 DUONG_DUNG)",
    )
    unit: str = Field(min_length=1, max_length=50, pattern=r"\S")
    quantity: float = Field(gt=0, le=1_000_000)
    dosage: str | None = Field(default=None, max_length=500)
    essential_medicine: MedicineCode | None = None
    prescriber: str | None = Field(
        default=None, max_length=64, description="practice licence number (XML2 MA_BAC_SI)"
    )


class MedicineDispensedV1(Payload):
    """medicine_dispensed/v1: what a person received at one visit."""

    health_id: HealthId
    dispensed_date: PastDate
    encounter_local_id: str | None = Field(default=None, pattern=LOCAL_ID_PATTERN)
    items: list[DispensedItem] = Field(min_length=1, max_length=100)
