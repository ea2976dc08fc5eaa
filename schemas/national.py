"""The national tier's allow-list: every field a national record may carry, declared once.

The national tier (``tier.national`` and the national store) is what an analyst with national
credentials reads. It carries only what is named here; everything else of a tier record is
dropped by the worker (``streams.national``), and the national sink's columns, the catalog's
national views and docs/streams.md ("The national tier") are derived from these declarations.

Envelope (:class:`NationalRecord`): the event id as a keyed hash in its own domain, the
pseudonymous record id and key, the operation, a version *rank* (orders a record's versions,
never equal to the version the province tier shows), months instead of times (``event_month``,
``service_month``, ``received_month``; ``report_submission`` keeps the Vietnam day it reached
the broker, ``received_date``, which the timeliness indicators need: a station's act, not a
person's), and the place: **person-level records carry the province only**; station-level
records (resource snapshots, report submissions: no personal data) keep station and district.
Dropped: ``station_seq``, ``signer``, ``key_id``, ``source_major``, every exact time.

Payload (:data:`NATIONAL_FIELDS`): per record type, the fields kept and how:

- :class:`Keep` — copied as they are (codes, counts, flags, measurements);
- :class:`Pseudonym` — a health id → its keyed pseudonym (the same in every record);
- :class:`Month` — a date → ``YYYY-MM`` under a ``*_month`` name;
- :class:`Nested` — an object (or each object of a list) reduced to its own allow-list;
- :class:`Derived` — a value computed from the after-image (``infant``, ``low_birth_weight``,
  ``visit_order``, the pseudonymised ``encounter_local_id``).

A field not named is dropped: names, phones, addresses, citizen ids, free text (referral
reasons, remarks, medicine names and dosages), facility and lot numbers, prescribers, and the
quasi-identifiers of a person (sex, ethnicity, birth date, residence commune): those reach the
national tier only through the k-anonymous release (``sinks.national``), generalised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EVENT_DOMAIN",
    "NATIONAL_ENVELOPE_DROPPED",
    "NATIONAL_FIELDS",
    "PERSON_QI_COLUMNS",
    "STATION_LEVEL_TYPES",
    "Derived",
    "FieldRule",
    "Keep",
    "Month",
    "NationalRecord",
    "Nested",
    "Pseudonym",
    "out_name",
]

#: HMAC domain of the national event id (its own: it equals no other pseudonym).
EVENT_DOMAIN: Final = "national_event_id"

#: Record types about a station, not a person: they keep station and district codes.
STATION_LEVEL_TYPES: Final = frozenset(
    {"staff_snapshot", "bed_snapshot", "equipment_snapshot", "stock_snapshot", "report_submission"}
)

#: Tier-record fields the national tier never carries (documentation; the allow-list is
#: :class:`NationalRecord`).
NATIONAL_ENVELOPE_DROPPED: Final = (
    "station_seq",
    "signer",
    "key_id",
    "source_major",
    "event_time",
    "received_time",
    "processed_time",
)


class NationalRecord(BaseModel):
    """One change on the national tier (the documented, validated form; the worker builds
    the same fields as a plain dict, in this order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(description="keyed hash of the event id (its own domain): dedupe key")
    record_type: str
    record_id: str = Field(description="pseudonymous record id")
    record_key: str = Field(description="pseudonymous Kafka key (the person's pseudonym)")
    op: Literal["upsert", "delete"]
    record_version: int = Field(
        ge=1,
        description="rank of the version: orders a record's versions, never equal to the "
        "record-level tiers' record_version",
    )
    schema_major: int = Field(ge=1)
    event_month: str = Field(description="entry month in Vietnam time, YYYY-MM")
    service_month: str | None = Field(default=None, description="service month, YYYY-MM")
    received_month: str = Field(description="month the broker received it (Vietnam time)")
    received_date: date | None = Field(
        default=None, description="report_submission only: the Vietnam day it was received"
    )
    station_code: str | None = Field(default=None, description="station-level records only")
    station_name: str | None = None
    district_code: str | None = Field(default=None, description="station-level records only")
    district_name: str | None = None
    province_code: str
    province_name: str
    pseudonymised: bool = True
    data: dict[str, Any] | None = Field(description="the allow-listed after-image")


# ---- payload rules ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keep:
    """Copied as it is."""


@dataclass(frozen=True, slots=True)
class Pseudonym:
    """A health id → ``p`` + 32 hex of its keyed pseudonym."""


@dataclass(frozen=True, slots=True)
class Month:
    """An ISO date → its ``YYYY-MM`` under ``out``."""

    out: str


@dataclass(frozen=True, slots=True)
class Nested:
    """An object, or each object of a list, reduced to ``fields``."""

    fields: Mapping[str, FieldRule]


DerivedKind = Literal["bool", "int", "str"]


@dataclass(frozen=True, slots=True)
class Derived:
    """A value computed by the worker (``streams.national``) under ``out``, of ``kind``;
    ``how`` names the computation."""

    out: str
    kind: DerivedKind
    how: str


FieldRule = Keep | Pseudonym | Month | Nested | Derived

KEEP: Final = Keep()
PSEUDONYM: Final = Pseudonym()


def out_name(name: str, rule: FieldRule) -> str:
    """The national field name of payload field ``name`` under ``rule``."""
    return rule.out if isinstance(rule, Month | Derived) else name


_BP: Final = Nested({"systolic_mmhg": KEEP, "diastolic_mmhg": KEEP})

#: Per record type: payload field → rule, in the order of the national columns.
NATIONAL_FIELDS: Final[dict[str, dict[str, FieldRule]]] = {
    "person": {
        "health_id": PSEUDONYM,
    },
    "encounter": {
        "health_id": PSEUDONYM,
        "encounter_date": Month("encounter_month"),
        "encounter_type": KEEP,
        "diagnoses": KEEP,
        "referral": Nested({"to_level": KEEP}),
    },
    "immunization": {
        "health_id": PSEUDONYM,
        "vaccine": KEEP,
        "dose_number": KEEP,
        "date": Month("dose_month"),
    },
    "chronic_followup": {
        "health_id": PSEUDONYM,
        "condition": KEEP,
        "visit_date": Month("visit_month"),
        "visit_order": Derived("visit_order", "int", "visit_order"),
        "measurements": Nested(
            {
                "blood_pressure": _BP,
                "systolic_bp_mmhg": KEEP,
                "diastolic_bp_mmhg": KEEP,
                "fasting_glucose_mmol_l": KEEP,
                "hba1c_percent": KEEP,
            }
        ),
        "controlled": KEEP,
        "newly_diagnosed": KEEP,
    },
    "chronic_enrolment": {
        "health_id": PSEUDONYM,
        "condition": KEEP,
        "enrolment_date": Month("enrolment_month"),
        "diagnosis_date": Month("diagnosis_month"),
        "treatment_start_date": Month("treatment_start_month"),
        "exit_reason": KEEP,
        "exit_date": Month("exit_month"),
    },
    "antenatal_visit": {
        "health_id": PSEUDONYM,
        "visit_number": KEEP,
        "visit_date": Month("visit_month"),
    },
    "birth": {
        "mother_health_id": PSEUDONYM,
        "birth_date": Month("birth_month"),
        "place": KEEP,
        "attendant": KEEP,
        "live_birth": KEEP,
        "low_birth_weight": Derived("low_birth_weight", "bool", "low_birth_weight"),
        "weighed": Derived("weighed", "bool", "weighed"),
    },
    "death": {
        "health_id": PSEUDONYM,
        "death_date": Month("death_month"),
        "cause_icd10": KEEP,
        "infant": Derived("infant", "bool", "infant"),
        "place": KEEP,
    },
    "disease_case": {
        "health_id": PSEUDONYM,
        "disease": KEEP,
        "onset_date": Month("onset_month"),
        "classification": KEEP,
        "hospitalised": KEEP,
        "outcome": KEEP,
    },
    "medicine_dispensed": {
        "health_id": PSEUDONYM,
        "dispensed_date": Month("dispensed_month"),
        "encounter_local_id": Derived("encounter_local_id", "str", "encounter_link"),
        "items": Nested(
            {"medicine_code": KEEP, "essential_medicine": KEEP, "quantity": KEEP, "unit": KEEP}
        ),
    },
    "person_transfer": {
        "health_id": PSEUDONYM,
        "transfer_date": Month("transfer_month"),
        "reason": KEEP,
    },
    "staff_snapshot": {"period": KEEP, "as_of": Month("as_of_month"), "counts": KEEP},
    "bed_snapshot": {
        "period": KEEP,
        "as_of": Month("as_of_month"),
        "beds_total": KEEP,
        "beds_occupied": KEEP,
    },
    "equipment_snapshot": {"period": KEEP, "as_of": Month("as_of_month"), "items": KEEP},
    "stock_snapshot": {"period": KEEP, "as_of": Month("as_of_month"), "items": KEEP},
    "report_submission": {"period": KEEP},
}

# ---- the released quasi-identifiers ------------------------------------------------------------

#: Columns of the k-anonymous person release (``<national>/person_qi/``, ``sinks.national``):
#: the person's pseudonym, the province and the generalised age band, the generalisation
#: level, and the birth month where the band is one month (children under five).
PERSON_QI_COLUMNS: Final = (
    ("record_key", "str"),
    ("province_code", "str"),
    ("age_band", "str"),
    ("birth_month", "str"),
    ("level", "int"),
    ("released_on", "date"),
)


def _check() -> None:
    """Every rule's output name is unique per record type (checked at import)."""
    for rt, rules in NATIONAL_FIELDS.items():
        outs = [out_name(n, r) for n, r in rules.items()]
        if len(outs) != len(set(outs)):
            raise AssertionError(f"national fields of {rt} repeat an output name: {outs}")


_check()
