"""Validation of raw station events: pure functions, no Kafka client imports.

Two stages, so the expensive, stateless part can run on a thread pool:

1. :meth:`Validator.check` (stateless, thread-safe): size, CloudEvents headers and value
   (``schemas.decode``: header allow-list, JSON, closed schema, types, bounds, formats, future
   time, Kafka key), the partition murmur2 gives the key, station known and open at event
   time (effective-dated hierarchy; for a transfer the receiving station too), event not too
   old, Ed25519 signature against the key registry (revocation judged at the broker's receive
   time), upcast to the current major, enrichment with the placement → :class:`Accepted` (a
   ``valid``-stream tier record: a plain dict with the fields of
   :class:`~schemas.tier.TierRecord`, in its order — built without pydantic on the hot path;
   tests check it validates as the model) or :class:`Rejected` (reason + message). Any
   unexpected exception is a :class:`Rejected` ``processing_error``: one event never stops
   the worker.
2. :func:`judge` then :func:`record` (stateful, sequential per partition): duplicates,
   replays, stale versions and version jumps, deletes of unknown records, the record's
   holder, transfers, against a :class:`~streams.state.StateStore` (:func:`admit` does both).

Duplicate policy (documented in docs/streams.md):

- same event id, same signature (hence byte-identical content: Ed25519 is deterministic) →
  :class:`Duplicate`: dropped and counted, not dead-lettered (redelivery, producer retry);
- same event id, different content → ``duplicate_event`` in the DLQ (an id reused: a replay);
- new event id but ``record_version`` not above the last accepted → ``replay_stale_version``;
- delete of a record never accepted → ``delete_unknown_record``.

Holders (docs/contract.md §3): the first accepted change of a record makes its station the
record's holder (``h`` in the state); a change from any other station is
``not_record_holder``. An accepted ``person_transfer`` from the holder of the person record
``<health id>`` makes ``to_station`` its holder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas import (
    CURRENT_MAJOR,
    ContractViolation,
    KeyRegistry,
    Reason,
    decode,
    upcast,
    verify,
)
from schemas.envelope import Op
from schemas.hierarchy import VN_TZ, Hierarchy, HierarchyError
from schemas.keys import STATION_HEAD, require_role
from schemas.partition import partition_for
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
    "judge",
    "record",
]

logger = logging.getLogger(__name__)

_TRANSFER: Final = RecordType.PERSON_TRANSFER.value
#: the names of record types and ops (a look-up costs less than an enum's ``.value``)
_NAMES: Final[dict[RecordType | Op, str]] = {m: m.value for e in (RecordType, Op) for m in e}


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
        partitions: int | None = None,
    ) -> None:
        """``partitions``: the raw topic's partition count; each message must sit on the
        partition murmur2 gives its key (``None``: not checked, for tests of single
        messages)."""
        self.hierarchy = hierarchy
        self.keys = keys
        self.policy = policy or ValidationPolicy()
        self.verify_signatures = verify_signatures
        self.partitions = partitions

    def check(self, msg: RawMessage, now: datetime | None = None) -> Accepted | Rejected:
        """Stage 1 for one message (see the module docstring); never raises."""
        now = now or datetime.now(UTC)
        try:
            return self._check(msg, now)
        except ContractViolation as exc:
            return Rejected(exc.reason, exc.message)
        except Exception as exc:  # a bug or an input nobody foresaw: this event only
            return processing_error(msg, "validate", exc)

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
        if msg.key is None:
            raise ContractViolation(Reason.KEY_MISMATCH, "the message has no key", field="key")
        change = decode(
            msg.value, msg.headers, key=msg.key, now=now, max_clock_skew=policy.max_clock_skew
        )
        if self.partitions is not None:
            expected = partition_for(msg.key, self.partitions)
            if expected != msg.partition:
                raise ContractViolation(
                    Reason.WRONG_PARTITION,
                    f"key {change.key} belongs on partition {expected} of {self.partitions} "
                    f"(murmur2), not {msg.partition}: publish with the murmur2 partitioner",
                    field="key",
                )
        if change.time < now - policy.max_event_age:
            raise ContractViolation(
                Reason.EVENT_TOO_OLD,
                f"ce_time {change.time.isoformat()} is older than the accepted "
                f"{policy.max_event_age.days} days",
                field="ce_time",
            )
        rt = _NAMES[change.record_type]
        placement = self._placement(change.station, change.time, "ce_source")
        if rt == _TRANSFER and change.data is not None:
            self._placement(change.data["to_station"], change.time, "data.to_station")
        if self.verify_signatures:
            key = verify(change, self.keys, received=msg.timestamp)
            if change.record_type is RecordType.REPORT_SUBMISSION:
                require_role(key, STATION_HEAD)
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
            "record_key": msg.key.decode(),  # = change.key: decode checked it
            "op": _NAMES[change.op],
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

    def _placement(self, station: str, at: datetime, where: str) -> Any:
        """Where ``station`` sat at ``at``: its unit, or after a merger (an old code still
        in use) the site of its successor (``Hierarchy.lookup_site``)."""
        try:
            return self.hierarchy.lookup_site(station, at)
        except HierarchyError as exc:
            reason = _HIERARCHY_REASONS.get(exc.reason, Reason.UNKNOWN_STATION)
            raise ContractViolation(reason, exc.message, field=where) from None


def processing_error(msg: RawMessage, stage: str, exc: BaseException) -> Rejected:
    """An unexpected exception on one event, as its dead-letter verdict (logged with the
    event's coordinates; the traceback at debug level)."""
    logger.error(
        "processing error stage=%s topic=%s partition=%d offset=%d error=%r",
        stage,
        msg.topic,
        msg.partition,
        msg.offset,
        exc,
    )
    logger.debug("processing error traceback", exc_info=exc)
    return Rejected(Reason.PROCESSING_ERROR, f"{stage}: {type(exc).__name__}: {exc}"[:500])


def _reject(reason: Reason, message: str, prev: RecordState | None) -> tuple[Rejected, Any]:
    return Rejected(reason, message), prev


def judge(
    accepted: Accepted,
    store: StateStore,
    partition: int,
    *,
    max_version_step: int = 1000,
) -> tuple[Accepted | Rejected | Duplicate, RecordState | None]:
    """Stage 2 verdict of ``accepted`` against the state (nothing is written: :func:`record`
    does that once the outputs are built). Returns the verdict and the record's state before
    it (``None`` if never seen)."""
    rec = accepted.record
    record_id: str = rec["record_id"]
    event_id_: str = rec["event_id"]
    version: int = rec["record_version"]
    station: str = rec["station_code"]
    prev = store.get(record_id, partition)
    digest = accepted.signature[:24]
    if prev is not None:
        for event_id, seen_digest in prev["ids"]:
            if event_id == event_id_:
                if seen_digest == digest:
                    return Duplicate(event_id_), prev
                return _reject(
                    Reason.DUPLICATE_EVENT,
                    f"event id {event_id_} was already accepted with other content",
                    prev,
                )
        holder = prev.get("h")
        if holder is not None and holder != station:
            return _reject(
                Reason.NOT_RECORD_HOLDER,
                f"{record_id} is held by station {holder}, not {station}",
                prev,
            )
        if version <= prev["v"]:
            return _reject(
                Reason.REPLAY_STALE_VERSION,
                f"record_version {version} of {record_id} is not above the "
                f"last accepted {prev['v']}",
                prev,
            )
        if version > prev["v"] + max_version_step:
            return _reject(
                Reason.VERSION_JUMP,
                f"record_version {version} of {record_id} is more than {max_version_step} "
                f"above the last accepted {prev['v']}",
                prev,
            )
    elif rec["op"] == "delete":
        return _reject(Reason.DELETE_UNKNOWN_RECORD, f"delete of {record_id}, never accepted", None)
    elif version > max_version_step:
        return _reject(
            Reason.VERSION_JUMP,
            f"a new record starts at record_version {max_version_step} at most, got {version}",
            None,
        )
    if rec["record_type"] == _TRANSFER:
        problem = _transfer_problem(rec, store.get(rec["record_key"], partition))
        if problem is not None:
            return problem, prev
    return accepted, prev


def _transfer_problem(rec: TierDict, person: RecordState | None) -> Rejected | None:
    """Why a transfer of the person record cannot happen now (None when it can)."""
    health_id, station = rec["record_key"], rec["station_code"]
    holder = person.get("h") if person is not None else None
    if person is None or (holder is not None and holder != station):
        where = "no such record" if person is None else f"held by {holder}"
        return Rejected(
            Reason.NOT_RECORD_HOLDER,
            f"station {station} does not hold person {health_id} ({where}): only the "
            "holder can transfer it",
        )
    released = rec["data"]["person_record_version"]
    if released != person["v"]:
        return Rejected(
            Reason.INCONSISTENT,
            f"transfer of person {health_id} at record_version {released}, but its last "
            f"accepted version is {person['v']}",
        )
    return None


def record(
    accepted: Accepted,
    store: StateStore,
    partition: int,
    prev: RecordState | None,
    *,
    ids_per_record: int = 8,
    contribution: Any = None,
) -> None:
    """Write the state of an event :func:`judge` accepted: the record's (with
    ``contribution``, the record's aggregate contribution, as ``c``, and its holder), and for
    a transfer the person record's new holder."""
    rec = accepted.record
    ids = [*(prev["ids"] if prev else ()), [rec["event_id"], accepted.signature[:24]]]
    new: RecordState = {
        "v": rec["record_version"],
        "d": rec["op"] == "delete",
        "ids": ids[-ids_per_record:],
        "c": contribution,
        "h": rec["station_code"],
    }
    store.put(rec["record_id"], new, partition)
    if rec["record_type"] == _TRANSFER:
        person = store.get(rec["record_key"], partition)
        assert person is not None, "judge checked the person record"
        store.put(rec["record_key"], {**person, "h": rec["data"]["to_station"]}, partition)


def admit(
    accepted: Accepted,
    store: StateStore,
    partition: int,
    *,
    ids_per_record: int = 8,
    contribution: Any = None,
    max_version_step: int = 1000,
) -> tuple[Accepted | Rejected | Duplicate, RecordState | None]:
    """:func:`judge`, and :func:`record` when accepted. Returns the verdict and the record's
    *previous* state (``None`` if never seen)."""
    verdict, prev = judge(accepted, store, partition, max_version_step=max_version_step)
    if isinstance(verdict, Accepted):
        record(
            accepted,
            store,
            partition,
            prev,
            ids_per_record=ids_per_record,
            contribution=contribution,
        )
    return verdict, prev
