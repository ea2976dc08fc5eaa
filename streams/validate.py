"""Validation of raw station events: pure functions, no Kafka client imports.

Two stages, so the expensive, stateless part can run on a thread pool:

1. :meth:`Validator.check` (stateless, thread-safe): size, CloudEvents headers and value
   (``schemas.decode``: JSON, closed schema, types, formats, future time, Kafka key), station
   known and open at event time (effective-dated hierarchy), event not too old, Ed25519
   signature against the key registry, upcast to the current major, enrichment with the
   placement → :class:`Accepted` (a ``valid``-stream tier record: a plain dict with the
   fields of :class:`~schemas.tier.TierRecord`, in its order — built without pydantic on the
   hot path; tests check it validates as the model) or :class:`Rejected` (reason + message).
2. :func:`admit` (stateful, sequential per partition): duplicates, replays, stale versions,
   deletes of unknown records, against a :class:`~streams.state.StateStore`.

Duplicate policy (documented in docs/streams.md):

- same event id, same signature (hence byte-identical content: Ed25519 is deterministic) →
  :class:`Duplicate`: dropped and counted, not dead-lettered (redelivery, producer retry);
- same event id, different content → ``duplicate_event`` in the DLQ (an id reused: a replay);
- new event id but ``record_version`` not above the last accepted → ``replay_stale_version``;
- delete of a record never accepted → ``delete_unknown_record``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas import (
    CURRENT_MAJOR,
    ContractViolation,
    KeyRegistry,
    Reason,
    decode,
    upcast,
    verify,
)
from schemas.hierarchy import VN_TZ, Hierarchy, HierarchyError
from schemas.keys import STATION_HEAD, require_role
from schemas.registry import RecordType
from schemas.service import service_month
from streams.config import ValidationPolicy
from streams.state import RecordState, StateStore

__all__ = [
    "Accepted",
    "Duplicate",
    "RawMessage",
    "Rejected",
    "TierDict",
    "Validator",
    "admit",
]


#: A tier record as a dict: the fields of :class:`schemas.tier.TierRecord`, in its order,
#: datetimes as ``datetime`` (orjson writes them as RFC 3339).
TierDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One consumed raw message with its Kafka coordinates."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    topic: str
    partition: int
    offset: int
    timestamp: datetime  # Kafka timestamp (received), tz-aware


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event passed; ``record`` is what goes to ``changes.valid``."""

    record: TierDict
    signature: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event goes to the DLQ with ``reason``."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An exact redelivery of an accepted event: dropped, counted."""

    event_id: str


_HIERARCHY_REASONS = {
    "unknown_station": Reason.UNKNOWN_STATION,
    "closed_station": Reason.CLOSED_STATION,
    "before_station_opened": Reason.BEFORE_STATION_OPENED,
}


class Validator:
    """Stateless checks and enrichment (thread-safe: shares only read-only reference data)."""

    def __init__(
        self,
        hierarchy: Hierarchy,
        keys: KeyRegistry,
        policy: ValidationPolicy | None = None,
        *,
        verify_signatures: bool = True,
    ) -> None:
        self.hierarchy = hierarchy
        self.keys = keys
        self.policy = policy or ValidationPolicy()
        self.verify_signatures = verify_signatures

    def check(self, msg: RawMessage, now: datetime | None = None) -> Accepted | Rejected:
        """Stage 1 for one message (see the module docstring)."""
        now = now or datetime.now(UTC)
        try:
            return self._check(msg, now)
        except ContractViolation as exc:
            return Rejected(exc.reason, exc.message)

    def check_many(
        self, msgs: Sequence[RawMessage], now: datetime | None = None
    ) -> list[Accepted | Rejected]:
        now = now or datetime.now(UTC)
        return [self.check(m, now) for m in msgs]

    def _check(self, msg: RawMessage, now: datetime) -> Accepted:
        policy = self.policy
        if msg.value is not None and len(msg.value) > policy.max_value_bytes:
            raise ContractViolation(
                Reason.OVERSIZED,
                f"value is {len(msg.value)} bytes, the limit is {policy.max_value_bytes}",
            )
        change = decode(
            msg.value, msg.headers, key=msg.key, now=now, max_clock_skew=policy.max_clock_skew
        )
        if change.time < now - policy.max_event_age:
            raise ContractViolation(
                Reason.EVENT_TOO_OLD,
                f"ce_time {change.time.isoformat()} is older than the accepted "
                f"{policy.max_event_age.days} days",
                field="ce_time",
            )
        try:
            placement = self.hierarchy.lookup_site(change.station, change.time)
        except HierarchyError as exc:
            reason = _HIERARCHY_REASONS.get(exc.reason, Reason.UNKNOWN_STATION)
            raise ContractViolation(reason, exc.message, field="ce_source") from None
        if self.verify_signatures:
            verify(change, self.keys)
            if change.record_type is RecordType.REPORT_SUBMISSION:
                require_role(self.keys, change.signer, STATION_HEAD)
        rt = change.record_type.value
        data: dict[str, Any] | None = change.data
        major = change.schema_major
        if data is not None:
            major, data = upcast(rt, major, data)
        else:
            major = CURRENT_MAJOR[change.record_type]
        local = change.time.astimezone(VN_TZ)
        event_month = f"{local.year:04d}-{local.month:02d}"
        record: TierDict = {
            "event_id": change.id,
            "record_type": rt,
            "record_id": change.record_id,
            "record_key": change.key,
            "op": change.op.value,
            "record_version": change.record_version,
            "station_seq": change.station_seq,
            "schema_major": major,
            "source_major": change.schema_major,
            "event_time": change.time,
            "received_time": msg.timestamp,
            "processed_time": now,
            "event_month": event_month,
            "service_month": service_month(rt, data, event_month),
            "station_code": placement.station.code,
            "station_name": placement.station.name,
            "district_code": placement.district.code,
            "district_name": placement.district.name,
            "province_code": placement.province.code,
            "province_name": placement.province.name,
            "signer": change.signer,
            "pseudonymised": False,
            "data": data,
        }
        return Accepted(record, change.signature)


def admit(
    accepted: Accepted,
    store: StateStore,
    partition: int,
    *,
    ids_per_record: int = 8,
    contribution: Any = None,
) -> tuple[Accepted | Rejected | Duplicate, RecordState | None]:
    """Stage 2: check ``accepted`` against the record's state.

    Returns the verdict and the record's *previous* state (``None`` if never seen). On
    acceptance the new state is written to ``store`` with ``contribution`` (the record's
    aggregate contribution, JSON-shaped) as ``c``.
    """
    rec = accepted.record
    record_id: str = rec["record_id"]
    event_id_: str = rec["event_id"]
    version: int = rec["record_version"]
    prev = store.get(record_id, partition)
    digest = accepted.signature[:24]
    if prev is not None:
        for event_id, seen_digest in prev["ids"]:
            if event_id == event_id_:
                if seen_digest == digest:
                    return Duplicate(event_id_), prev
                return (
                    Rejected(
                        Reason.DUPLICATE_EVENT,
                        f"event id {event_id_} was already accepted with other content",
                    ),
                    prev,
                )
        if version <= prev["v"]:
            return (
                Rejected(
                    Reason.REPLAY_STALE_VERSION,
                    f"record_version {version} of {record_id} is not above the "
                    f"last accepted {prev['v']}",
                ),
                prev,
            )
    elif rec["op"] == "delete":
        return (
            Rejected(Reason.DELETE_UNKNOWN_RECORD, f"delete of {record_id}, never accepted"),
            None,
        )
    ids = [*(prev["ids"] if prev else ()), [event_id_, digest]][-ids_per_record:]
    new: RecordState = {
        "v": version,
        "d": rec["op"] == "delete",
        "ids": ids,
        "c": contribution,
    }
    store.put(record_id, new, partition)
    return accepted, prev
