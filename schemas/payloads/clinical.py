"""Clinical encounters at the station: visits, the chronic-disease register and its
follow-up visits, antenatal care.

``encounter`` has two majors: v1 carries blood pressure as two flat vitals fields; v2 groups
them in a ``blood_pressure`` object. ``chronic_followup`` has two majors: v1 carried a yes/no
``controlled`` flag beside the measurements; v2 has the measurements only (control is computed
from them, WHO HEARTS) and blood pressure as the same object (see :mod:`schemas.upcasters`).
``chronic_enrolment`` is the register itself: one record per patient and condition.
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


ChronicCondition = Literal["hypertension", "diabetes"]


class ChronicFollowupV1(Payload):
    """chronic_followup/v1: a management visit for hypertension or diabetes."""

    health_id: HealthId
    condition: ChronicCondition
    visit_date: PastDate
    controlled: bool
    newly_diagnosed: bool = False
    measurements: ChronicMeasurements | None = None


class ChronicMeasurementsV2(Payload):
    """What a follow-up visit measured: control is computed from these (WHO HEARTS: blood
    pressure below 140/90 mmHg; fasting glucose below 7.0 mmol/L or HbA1c below 7 %)."""

    blood_pressure: BloodPressure | None = None
    fasting_glucose_mmol_l: float | None = Field(default=None, gt=0, le=60)
    hba1c_percent: float | None = Field(default=None, gt=2, le=25)


class ChronicFollowupV2(Payload):
    """chronic_followup/v2: a visit of a patient of the hypertension or diabetes register."""

    health_id: HealthId
    condition: ChronicCondition
    visit_date: PastDate
    measurements: ChronicMeasurementsV2 | None = None
    on_treatment: bool | None = Field(
        default=None, description="the patient takes or was given medicine for the condition"
    )


ExitReason = Literal["transferred_out", "died", "refused", "other"]


class ChronicEnrolmentV1(Payload):
    """chronic_enrolment/v1: a patient's entry in the station's hypertension or diabetes
    register (the WHO HEARTS treatment register). One record per patient and condition;
    ``exit_reason``/``exit_date`` close it (transfer, death, refusal)."""

    health_id: HealthId
    condition: ChronicCondition
    enrolment_date: PastDate
    diagnosis_date: PastDate | None = None
    treatment_start_date: PastDate | None = None
    exit_reason: ExitReason | None = None
    exit_date: PastDate | None = None

    @model_validator(mode="after")
    def _dates(self) -> ChronicEnrolmentV1:
        if (self.exit_reason is None) != (self.exit_date is None):
            raise PydanticCustomError("inconsistent", "exit_reason and exit_date go together")
        if self.diagnosis_date is not None and self.diagnosis_date > self.enrolment_date:
            raise PydanticCustomError("inconsistent", "diagnosed after enrolment")
        if self.exit_date is not None and self.exit_date < self.enrolment_date:
            raise PydanticCustomError("inconsistent", "exit_date is before enrolment_date")
        return self


class AntenatalVisitV1(Payload):
    """antenatal_visit/v1."""

    health_id: HealthId
    visit_number: int = Field(ge=1, le=20)
    gestational_weeks: int = Field(ge=1, le=45)
    visit_date: PastDate
    expected_delivery_date: AnyDate | None = None
