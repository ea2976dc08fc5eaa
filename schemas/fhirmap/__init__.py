"""The contract's payloads as FHIR R4 resources and back (JSON-shaped dicts, no validation).

One mapping serves both directions: the patient summary (``sinks.summary``) writes
resources with :func:`patient`, :func:`encounter` … and the FHIR import
(``producers.interop.fhir``) reads them back with :func:`person_data`,
:func:`encounter_data` …, so a record exported and imported again is the same record.
Validation against the FHIR structures (``fhir.resources``) is the callers' job.

Identifiers and code systems (documented in docs/interop.md):

- ``Patient.identifier``: health id (``urn:tuyen:id:health-id``), citizen id
  (``urn:tuyen:id:citizen-id``); every resource made from a record carries the record id
  (``urn:tuyen:id:record``); ``meta.lastUpdated`` is the record's event time.
- diagnoses ICD-10 (``http://hl7.org/fhir/sid/icd-10``); vital signs LOINC with UCUM units;
  encounter class v3-ActCode (AMB, IMP, EMER, HH); vaccines, ethnic groups, medicines,
  notifiable diseases and referral levels in the project's code systems (``urn:tuyen:code:…``).
"""

from schemas.fhirmap.read import (
    encounter_data,
    identifier,
    immunization_data,
    person_data,
    record_id_of,
)
from schemas.fhirmap.systems import (
    BP_DIASTOLIC,
    BP_PANEL,
    BP_POSITION,
    BP_SYSTOLIC,
    CLASS_OF,
    EXT_COMMUNE,
    EXT_ETHNICITY,
    INT_VITALS,
    SYS_ACT,
    SYS_CITIZEN_ID,
    SYS_CONDITION_CATEGORY,
    SYS_CONDITION_CLINICAL,
    SYS_DISEASE,
    SYS_ESSENTIAL_MEDICINE,
    SYS_ETHNIC_GROUP,
    SYS_FACILITY,
    SYS_HEALTH_ID,
    SYS_ICD10,
    SYS_LOINC,
    SYS_MA_CSKCB,
    SYS_MEDICINE,
    SYS_OBS_CATEGORY,
    SYS_RECORD,
    SYS_REFERRAL_LEVEL,
    SYS_SOURCE,
    SYS_TUYEN_CATEGORY,
    SYS_UCUM,
    SYS_VACCINE,
    TYPE_OF_CLASS,
    VITALS,
    VITALS_OF_LOINC,
    coding,
    concept,
    full_url,
    meta_of,
    record_identifier,
    ref,
    resource_id,
)
from schemas.fhirmap.write import (
    bundle,
    encounter,
    immunization,
    medication_statements,
    organization,
    patient,
    record_resources,
)

__all__ = [
    "BP_DIASTOLIC",
    "BP_PANEL",
    "BP_POSITION",
    "BP_SYSTOLIC",
    "CLASS_OF",
    "EXT_COMMUNE",
    "EXT_ETHNICITY",
    "INT_VITALS",
    "SYS_ACT",
    "SYS_CITIZEN_ID",
    "SYS_CONDITION_CATEGORY",
    "SYS_CONDITION_CLINICAL",
    "SYS_DISEASE",
    "SYS_ESSENTIAL_MEDICINE",
    "SYS_ETHNIC_GROUP",
    "SYS_FACILITY",
    "SYS_HEALTH_ID",
    "SYS_ICD10",
    "SYS_LOINC",
    "SYS_MA_CSKCB",
    "SYS_MEDICINE",
    "SYS_OBS_CATEGORY",
    "SYS_RECORD",
    "SYS_REFERRAL_LEVEL",
    "SYS_SOURCE",
    "SYS_TUYEN_CATEGORY",
    "SYS_UCUM",
    "SYS_VACCINE",
    "TYPE_OF_CLASS",
    "VITALS",
    "VITALS_OF_LOINC",
    "bundle",
    "coding",
    "concept",
    "encounter",
    "encounter_data",
    "full_url",
    "identifier",
    "immunization",
    "immunization_data",
    "medication_statements",
    "meta_of",
    "organization",
    "patient",
    "person_data",
    "record_id_of",
    "record_identifier",
    "record_resources",
    "ref",
    "resource_id",
]
