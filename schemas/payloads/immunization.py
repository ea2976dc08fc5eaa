"""Immunisation doses of the Expanded Programme on Immunization (tiêm chủng mở rộng)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from schemas import codes
from schemas.fields import HealthId, PastDate, Payload, VaccineCode


class ImmunizationV1(Payload):
    """immunization/v1: one dose. ``dose_number`` counts within the vaccine code."""

    health_id: HealthId
    vaccine: VaccineCode
    dose_number: int = Field(ge=1, le=10)
    date: PastDate
    lot_number: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _dose_in_schedule(self) -> ImmunizationV1:
        highest = codes.VACCINES[self.vaccine][1]
        if self.dose_number > highest:
            raise PydanticCustomError(
                "out_of_range",
                "{v} has at most {n} doses in the programme, got dose {d}",
                {"v": self.vaccine, "n": highest, "d": self.dose_number},
            )
        return self
