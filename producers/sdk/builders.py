"""Typed builders: from a payload model to the record type, record id and op of a change.

Pure (no Kafka, no disk). :class:`producers.sdk.StationClient` adds ``station_seq``,
``record_version``, the signature and the outbox; its typed builders (``upsert_person``, …)
are its ``upsert`` under one payload model's type (:class:`TypedUpsert`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Protocol, Self, TypeVar, cast, overload

from schemas import Payload, RecordType, resource_record_id
from schemas.registry import KEY_FIELD, MODELS, RESOURCE_OF

_TYPE_OF: Final[dict[type[Payload], tuple[RecordType, int]]] = {
    model: (rt, major) for rt, by_major in MODELS.items() for major, model in by_major.items()
}


@dataclass(frozen=True, slots=True)
class Draft:
    """A change before it gets its counters and signature."""

    record_type: RecordType
    record_id: str
    op: str
    data: dict[str, Any] | None
    schema_major: int


def record_type_of_payload(payload: Payload) -> tuple[RecordType, int]:
    """(record type, major) of a payload model instance."""
    try:
        return _TYPE_OF[type(payload)]
    except KeyError:
        raise TypeError(f"{type(payload).__name__} is not a payload model") from None


def new_local_id() -> str:
    """A fresh local id for a person-centred record (32 hex digits)."""
    return uuid.uuid4().hex


def record_id_for(
    payload: Payload, station: str, *, local_id: str | None = None
) -> tuple[RecordType, str]:
    """The record type and record id of ``payload`` (see ``schemas.registry``): the health
    id for a person, ``<health id>:<local id>`` for person-centred records (a new local id
    when ``local_id`` is ``None``), ``<station>:<resource>:<period>`` for snapshots."""
    rt, _ = record_type_of_payload(payload)
    if rt is RecordType.PERSON:
        return rt, str(payload.health_id)  # type: ignore[attr-defined]
    if rt in RESOURCE_OF:
        return rt, resource_record_id(rt, station, str(payload.period))  # type: ignore[attr-defined]
    health_id = getattr(payload, KEY_FIELD[rt])
    return rt, f"{health_id}:{local_id or new_local_id()}"


def upsert_draft(payload: Payload, station: str, *, local_id: str | None = None) -> Draft:
    """An upsert of ``payload`` (the full after-image)."""
    rt, major = record_type_of_payload(payload)
    if local_id is not None and (rt is RecordType.PERSON or rt in RESOURCE_OF):
        raise TypeError(f"a {rt.value} record is named by its payload: local_id is not taken")
    _, record_id = record_id_for(payload, station, local_id=local_id)
    return Draft(rt, record_id, "upsert", payload.model_dump(mode="json", exclude_none=True), major)


def delete_draft(record_type: str, record_id: str) -> Draft:
    """A delete of a record (no data)."""
    rt = RecordType(record_type)
    return Draft(rt, record_id, "delete", None, max(MODELS[rt]))


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event the client has accepted: it is in the outbox and will reach Kafka."""

    event_id: str
    record_type: str
    record_id: str
    record_version: int
    station_seq: int


P = TypeVar("P", bound=Payload, contravariant=True)


class UpsertLocal(Protocol[P]):
    """A typed builder of a person-centred record: ``local_id`` names the record (a new one
    is made when ``None``), so it can be updated later."""

    def __call__(
        self, p: P, /, *, local_id: str | None = None, time: datetime | None = None
    ) -> Accepted: ...


class UpsertKeyed(Protocol[P]):
    """A typed builder of a record whose id its content gives (a person, a monthly snapshot)."""

    def __call__(self, p: P, /, *, time: datetime | None = None) -> Accepted: ...


F = TypeVar("F")


class _Upserts(Protocol):
    def upsert(
        self, payload: object, *, local_id: str | None = None, time: datetime | None = None
    ) -> Accepted: ...


class TypedUpsert(Generic[F]):
    """:meth:`StationClient.upsert` under the narrower type ``F`` (one payload model's
    :class:`UpsertLocal` or :class:`UpsertKeyed`); the same method at run time."""

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: _Upserts, owner: type | None = None) -> F: ...
    def __get__(self, client: _Upserts | None, owner: type | None = None) -> Self | F:
        return self if client is None else cast(F, client.upsert)
