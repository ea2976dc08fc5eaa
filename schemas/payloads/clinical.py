"""Clinical encounters at the station: visits, chronic-disease follow-up, antenatal care.

``encounter`` has two majors: v1 carries blood pressure as two flat vitals fields; v2 groups
them in a ``blood_pressure`` object (see :mod:`schemas.upcasters`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.fields import AnyDate, HealthId, Icd10Code, PastDate, Payload


def _bp_consistent(systolic: int | None, diastolic: int | None) -> None:
    if (systolic is None) != (diastolic is None):
        raise PydanticCustomError(
            "inconsistent", "systolic and diastolic blood pressure go together"
        )
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise PydanticCustomError(
            "inconsistent",
            "diastolic ({d}) must be below systolic ({s}) blood pressure",
            {"d": diastolic, "s": systolic},
        )


class Referral(Payload):
    """A referral up the tiers."""

    to_level: Literal["district", "province", "central", "other"]
    facility_code: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=200)


class VitalsV1(Payload):
    systolic_bp_mmhg: int | None = Field(default=None, ge=50, le=300)
    diastolic_bp_mmhg: int | None = Field(default=None, ge=20, le=200)
    pulse_bpm: int | None = Field(default=None, ge=20, le=250)
    temperature_c: float | None = Field(default=None, ge=30, le=45)
    weight_kg: float | None = Field(default=None, gt=0, le=300)
    height_cm: float | None = Field(default=None, gt=20, le=250)

    @model_validator(mode="after")
    def _bp(self) -> VitalsV1:
        _bp_consistent(self.systolic_bp_mmhg, self.diastolic_bp_mmhg)
        return self


class BloodPressure(Payload):
    systolic_mmhg: int = Field(ge=50, le=300)
    diastolic_mmhg: int = Field(ge=20, le=200)
    position: Literal["sitting", "lying", "standing"] | None = None

    @model_validator(mode="after")
    def _bp(self) -> BloodPressure:
        _bp_consistent(self.systolic_mmhg, self.diastolic_mmhg)
        return self


class VitalsV2(Payload):
    blood_pressure: BloodPressure | None = None
    pulse_bpm: int | None = Field(default=None, ge=20, le=250)
    temperature_c: float | None = Field(default=None, ge=30, le=45)
    weight_kg: float | None = Field(default=None, gt=0, le=300)
    height_cm: float | None = Field(default=None, gt=20, le=250)


EncounterType = Literal["outpatient", "inpatient", "emergency", "home_visit"]


class EncounterV1(Payload):
    """encounter/v1. ``diagnoses[0]`` is the principal diagnosis."""

    health_id: HealthId
    encounter_date: PastDate
    encounter_type: EncounterType = "outpatient"
    diagnoses: list[Icd10Code] = Field(min_length=1, max_length=10)
    vitals: VitalsV1 | None = None
    referral: Referral | None = None


class EncounterV2(Payload):
    """encounter/v2: vitals.blood_pressure is an object."""

    health_id: HealthId
    encounter_date: PastDate
    encounter_type: EncounterType = "outpatient"
    diagnoses: list[Icd10Code] = Field(min_length=1, max_length=10)
    vitals: VitalsV2 | None = None
    referral: Referral | None = None


class ChronicMeasurements(Payload):
    systolic_bp_mmhg: int | None = Field(default=None, ge=50, le=300)
    diastolic_bp_mmhg: int | None = Field(default=None, ge=20, le=200)
    fasting_glucose_mmol_l: float | None = Field(default=None, gt=0, le=60)
    hba1c_percent: float | None = Field(default=None, gt=2, le=25)

    @model_validator(mode="after")
    def _bp(self) -> ChronicMeasurements:
        _bp_consistent(self.systolic_bp_mmhg, self.diastolic_bp_mmhg)
        return self


class ChronicFollowupV1(Payload):
    """chronic_followup/v1: a management visit for hypertension or diabetes."""

    health_id: HealthId
    condition: Literal["hypertension", "diabetes"]
    visit_date: PastDate
    controlled: bool
    newly_diagnosed: bool = False
    measurements: ChronicMeasurements | None = None


class AntenatalVisitV1(Payload):
    """antenatal_visit/v1."""

    health_id: HealthId
    visit_number: int = Field(ge=1, le=20)
    gestational_weeks: int = Field(ge=1, le=45)
    visit_date: PastDate
    expected_delivery_date: AnyDate | None = None
