"""Vital events: births and deaths."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.fields import HealthId, Icd10Code, PastDate, Payload

BirthAttendant = Literal[
    "doctor",
    "assistant_doctor",
    "ob_paediatric_assistant_doctor",
    "nurse",
    "midwife",
    "village_health_worker",
    "village_midwife",
    "traditional_birth_attendant",
    "family",
    "other",
    "none",
]


class BirthV1(Payload):
    """birth/v1. Record key: the mother's health id."""

    mother_health_id: HealthId
    child_health_id: HealthId | None = None
    birth_date: PastDate
    place: Literal["facility", "home", "other"]
    attendant: BirthAttendant
    weight_grams: int | None = Field(default=None, ge=200, le=7000)
    child_sex: Literal["male", "female", "undetermined"] | None = None
    live_birth: bool

    @model_validator(mode="after")
    def _stillbirth_has_no_id(self) -> BirthV1:
        if not self.live_birth and self.child_health_id is not None:
            raise PydanticCustomError("inconsistent", "a stillbirth has no child health id")
        return self


class DeathV1(Payload):
    """death/v1. Exactly one of ``age_days`` (under one year) or ``age_years``."""

    health_id: HealthId
    death_date: PastDate
    cause_icd10: Icd10Code
    age_days: int | None = Field(default=None, ge=0, le=365)
    age_years: int | None = Field(default=None, ge=0, le=130)
    place: Literal["facility", "home", "other"] | None = None

    @model_validator(mode="after")
    def _one_age(self) -> DeathV1:
        if (self.age_days is None) == (self.age_years is None):
            raise PydanticCustomError("inconsistent", "give exactly one of age_days or age_years")
        return self

    @property
    def infant(self) -> bool:
        """Died before the first birthday (for the infant mortality rate)."""
        return self.age_days is not None or self.age_years == 0
