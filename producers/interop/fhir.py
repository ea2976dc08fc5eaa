"""FHIR R4 Bundle import: Patient, Encounter (+ its Conditions and vital-sign Observations)
and Immunization resources → person, encounter and immunization records.

Every entry is validated with ``fhir.resources`` (R4B, whose classes for these resources are
R4's) one by one, so one broken resource is one problem line; then mapped with
:mod:`schemas.fhirmap` (the mapping the patient summary writes with) and validated as the
contract's payloads. A resource's problem line is ``file, resourceType, Type/id, reason,
message``; a Patient's problem makes its encounters and immunizations bad too.

Event time: ``meta.lastUpdated`` when present, else the clinical time (encounter start,
immunization date; for a Patient the bundle's ``timestamp``, else its earliest record).
Local ids: the record id carried in ``urn:tuyen:id:record`` (a round trip keeps it), else
the resource id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import ValidationError

from producers.interop.importer import (
    Draft,
    Problem,
    ReadContext,
    Visit,
    read_input,
    validated,
)
from schemas import ContractViolation, Reason, fhirmap
from schemas.hierarchy import VN_TZ
from schemas.registry import RecordType

__all__ = ["MAX_BUNDLE_BYTES", "read_bundle"]

MAX_BUNDLE_BYTES: Final = 64 * 1024 * 1024
IMPORTED: Final = frozenset({"Patient", "Encounter", "Immunization", "Condition", "Observation"})
_LOCAL_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")

Resource = dict[str, Any]


def _validate(resource: Resource) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except KeyError:
        raise ContractViolation(
            Reason.SCHEMA_VIOLATION, f"unknown resourceType {resource.get('resourceType')!r}"
        ) from None
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ContractViolation(
            Reason.SCHEMA_VIOLATION,
            f"not a valid FHIR R4 {resource['resourceType']}: {loc}: {err['msg']}",
        ) from None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ContractViolation(Reason.BAD_TIME, f"{text!r} is not a FHIR dateTime") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=VN_TZ)


def _local_id(resource: Resource, health_id: str) -> str:
    rid = fhirmap.record_id_of(resource)
    if rid is not None:
        hid, _, local = rid.partition(":")
        if hid != health_id or not local:
            raise ContractViolation(
                Reason.KEY_MISMATCH, f"record id {rid} is not of the patient {health_id}"
            )
        return local
    local = str(resource.get("id") or "")
    if not local or len(local) > 64 or not set(local) <= _LOCAL_OK:
        raise ContractViolation(Reason.BAD_RECORD_ID, "the resource has no usable id")
    return local


class _Bundle:
    """A parsed bundle: entries indexed by fullUrl and ``Type/id``."""

    def __init__(self, file: str, obj: Mapping[str, Any], ctx: ReadContext) -> None:
        self.file, self.ctx = file, ctx
        self.timestamp = _time(obj.get("timestamp"))
        self.entries: list[Resource] = []
        self.by_ref: dict[str, Resource] = {}
        self.bad: dict[str, Problem] = {}
        for entry in obj.get("entry") or ():
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict):
                continue
            self.entries.append(res)
            key = f"{res.get('resourceType')}/{res.get('id')}"
            for name in (entry.get("fullUrl"), key):
                if name:
                    self.by_ref[name] = res

    @staticmethod
    def key(res: Mapping[str, Any]) -> str:
        return f"{res.get('resourceType')}/{res.get('id')}"

    def resolve(self, reference: Mapping[str, Any] | None) -> Resource | None:
        target = (reference or {}).get("reference")
        return self.by_ref.get(target) if target else None

    def problem(self, res: Mapping[str, Any], exc: ContractViolation) -> Problem:
        return Problem(
            self.file, str(res.get("resourceType")), self.key(res), exc.reason, exc.message
        )

    def warn(self, res: Mapping[str, Any], message: str) -> None:
        self.ctx.warn(
            self.file, str(res.get("resourceType")), self.key(res), Reason.SCHEMA_VIOLATION, message
        )


def _source(b: _Bundle, at: datetime) -> str:
    for res in b.entries:
        if res.get("resourceType") == "Organization":
            code = fhirmap.identifier(res, fhirmap.SYS_MA_CSKCB)
            if code:
                return b.ctx.source_of(code, at)
    return b.ctx.source_of(None, at)


def read_bundle(path: Path, ctx: ReadContext) -> Iterator[Visit | Problem]:
    """The records of one Bundle (JSON), and one problem per bad resource or file."""
    name = str(path)
    try:
        raw = read_input(path, MAX_BUNDLE_BYTES)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ContractViolation(Reason.NOT_JSON, f"not JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.get("resourceType") != "Bundle":
            raise ContractViolation(Reason.SCHEMA_VIOLATION, "not a FHIR Bundle")
        _validate({**obj, "entry": []})
    except ContractViolation as exc:
        yield Problem(name, "Bundle", "-", exc.reason, exc.message)
        return
    b = _Bundle(name, obj, ctx)
    yield from _records(b)


def _records(b: _Bundle) -> Iterator[Visit | Problem]:
    good = yield from _valid(b)
    conditions, observations = _findings(b, good)
    records, clinical = yield from _subjects(b, good)
    patients: dict[str, str] = {}  # Patient key → health id
    for res in good:
        if res["resourceType"] == "Patient":
            item, hid = _person(b, res, clinical[b.key(res)])
            if isinstance(item, Problem):
                b.bad[b.key(res)] = item
            else:
                patients[b.key(res)] = hid
            yield item
    for res, subject in records:
        skey = b.key(subject)
        if skey not in patients:
            reason = b.bad[skey].reason if skey in b.bad else Reason.MISSING_FIELD
            yield b.problem(res, ContractViolation(reason, f"its Patient {skey} is bad"))
            continue
        key = b.key(res)
        record = _clinical(b, res, patients[skey], conditions[key], observations[key])
        if record is not None:
            yield record


def _valid(b: _Bundle) -> Generator[Problem, None, list[Resource]]:
    """Problems of the entries FHIR validation refuses; returns the imported others."""
    good: list[Resource] = []
    for res in b.entries:
        try:
            _validate(res)
        except ContractViolation as exc:
            b.bad[b.key(res)] = b.problem(res, exc)
            yield b.bad[b.key(res)]
            continue
        if res.get("resourceType") in IMPORTED:
            good.append(res)
        elif res.get("resourceType") != "Organization":
            b.warn(res, f"{res.get('resourceType')} is not imported: skipped")
    return good


def _findings(
    b: _Bundle, good: list[Resource]
) -> tuple[dict[str, list[Resource]], dict[str, list[Resource]]]:
    """Conditions and Observations by the key of their Encounter (loose ones warned)."""
    conditions: dict[str, list[Resource]] = defaultdict(list)
    observations: dict[str, list[Resource]] = defaultdict(list)
    for res in good:
        kind = res["resourceType"]
        if kind in ("Condition", "Observation"):
            enc = b.resolve(res.get("encounter"))
            if enc is None or enc.get("resourceType") != "Encounter":
                b.warn(res, f"a {kind} outside an Encounter of the bundle is not imported")
                continue
            (conditions if kind == "Condition" else observations)[b.key(enc)].append(res)
    return conditions, observations


def _subjects(
    b: _Bundle, good: list[Resource]
) -> Generator[Problem, None, tuple[list[tuple[Resource, Resource]], dict[str, list[datetime]]]]:
    """Encounters and Immunizations with their Patient, and each Patient's clinical times."""
    records: list[tuple[Resource, Resource]] = []
    clinical: dict[str, list[datetime]] = defaultdict(list)
    for res in good:
        if res["resourceType"] in ("Encounter", "Immunization"):
            subject = b.resolve(res.get("subject") or res.get("patient"))
            if subject is None or subject.get("resourceType") != "Patient":
                yield b.problem(res, ContractViolation(
                    Reason.MISSING_FIELD, "its subject is not a Patient of the bundle"
                ))  # fmt: skip
                continue
            records.append((res, subject))
            t = _record_time(res)
            if t is not None:
                clinical[b.key(subject)].append(t)
    return records, clinical


def _clinical(
    b: _Bundle,
    res: Resource,
    hid: str,
    conditions: list[Resource],
    observations: list[Resource],
) -> Visit | Problem | None:
    """An Encounter (with its findings) or an Immunization as a record (``None``: skipped)."""
    rt: RecordType
    try:
        t = _meta_time(res) or _record_time(res)
        if t is None:
            raise ContractViolation(Reason.MISSING_FIELD, "no time (period.start, date)")
        b.ctx.check_time(t, "time")
        source = _source(b, t)
        local = _local_id(res, hid)
        if res["resourceType"] == "Encounter":
            ordered = _ordered_conditions(b, res, conditions)
            data = fhirmap.encounter_data(res, ordered, observations, hid)
            rt = RecordType.ENCOUNTER
        else:
            if res.get("status") != "completed":
                b.warn(res, f"status {res.get('status')!r}: only completed doses are imported")
                return None
            data = fhirmap.immunization_data(res, hid)
            rt = RecordType.IMMUNIZATION
        payload = validated(rt, data, b.ctx.now)
    except ContractViolation as exc:
        return b.problem(res, exc)
    return Visit(b.file, b.key(res), source, [Draft(res["resourceType"], rt, local, payload, t)])


def _meta_time(res: Mapping[str, Any]) -> datetime | None:
    return _time((res.get("meta") or {}).get("lastUpdated"))


def _record_time(res: Mapping[str, Any]) -> datetime | None:
    if res.get("resourceType") == "Encounter":
        return _time((res.get("period") or {}).get("start"))
    return _time(res.get("occurrenceDateTime"))


def _ordered_conditions(b: _Bundle, enc: Resource, linked: list[Resource]) -> list[Resource]:
    """The encounter's diagnoses: ``Encounter.diagnosis`` by rank, else bundle order."""
    listed = sorted(enc.get("diagnosis") or (), key=lambda d: d.get("rank") or 10**6)
    out = []
    for d in listed:
        cond = b.resolve(d.get("condition"))
        if cond is not None and cond.get("resourceType") == "Condition" and cond not in out:
            out.append(cond)
    out += [c for c in linked if c not in out]
    return out


def _person(b: _Bundle, res: Resource, times: list[datetime]) -> tuple[Visit | Problem, str]:
    try:
        t = _meta_time(res) or b.timestamp or (min(times) if times else None) or b.ctx.now
        b.ctx.check_time(t, "time")
        data = fhirmap.person_data(res)
        payload = validated(RecordType.PERSON, data, b.ctx.now)
        source = _source(b, t)
    except ContractViolation as exc:
        return b.problem(res, exc), ""
    draft = Draft("Patient", RecordType.PERSON, None, payload, t)
    return Visit(b.file, b.key(res), source, [draft]), data["health_id"]
