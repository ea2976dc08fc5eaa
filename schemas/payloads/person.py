"""The personal health record (hồ sơ sức khỏe cá nhân). Record id = the health id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.fields import (
    CitizenId,
    CommuneCode,
    EthnicityCode,
    HealthId,
    PastDate,
    Payload,
    Phone,
    citizen_id_century_sex,
)

Sex = Literal["male", "female"]


class PersonV1(Payload):
    """person/v1."""

    health_id: HealthId
    citizen_id: CitizenId | None = None
    full_name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    sex: Sex
    birth_date: PastDate
    ethnicity: EthnicityCode
    residence_commune: CommuneCode
    street_address: str | None = Field(default=None, max_length=200)
    phone: Phone | None = None
    registration_date: PastDate | None = Field(
        default=None,
        description="the day the personal health record was opened: the record's service "
        "date (reports count the record from this month; without it, from the month the "
        "version was entered, so a correction would move it)",
    )

    @model_validator(mode="after")
    def _registered_after_birth(self) -> PersonV1:
        if self.registration_date is not None and self.registration_date < self.birth_date:
            raise PydanticCustomError(
                "inconsistent",
                "registration_date {r} is before birth_date {b}",
                {"r": self.registration_date.isoformat(), "b": self.birth_date.isoformat()},
            )
        return self

    @model_validator(mode="after")
    def _citizen_id_matches(self) -> PersonV1:
        if self.citizen_id is not None:
            century, sex = citizen_id_century_sex(self.citizen_id)
            year = century + int(self.citizen_id[4:6])
            if sex != self.sex or year != self.birth_date.year:
                raise PydanticCustomError(
                    "bad_citizen_id",
                    "citizen id encodes {s} born {y}, the record says {rs} born {ry}",
                    {"s": sex, "y": year, "rs": self.sex, "ry": self.birth_date.year},
                )
        return self
