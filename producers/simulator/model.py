"""What the simulator yields and the ground truth it keeps for oracle tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from schemas import KafkaMessage, Reason, RecordChange


class BadKind(StrEnum):
    """Deliberately bad events, one per way of breaking the contract. Each has exactly one
    expected rejection reason (:data:`EXPECTED_REASON`)."""

    TAMPERED = "tampered"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_SIGNER = "unknown_signer"
    FOREIGN_SIGNER = "foreign_signer"
    BAD_ICD10 = "bad_icd10"
    UNKNOWN_VACCINE = "unknown_vaccine"
    BAD_CITIZEN_ID = "bad_citizen_id"
    FUTURE_TIME = "future_time"
    NOT_JSON = "not_json"
    MISSING_HEADER = "missing_header"
    EXTRA_FIELD = "extra_field"
    UNKNOWN_STATION = "unknown_station"


EXPECTED_REASON: dict[BadKind, Reason] = {
    BadKind.TAMPERED: Reason.TAMPERED,
    BadKind.BAD_SIGNATURE: Reason.BAD_SIGNATURE,
    BadKind.UNKNOWN_SIGNER: Reason.SIGNER_NOT_REGISTERED,
    BadKind.FOREIGN_SIGNER: Reason.SIGNATURE_STATION_MISMATCH,
    BadKind.BAD_ICD10: Reason.BAD_ICD10,
    BadKind.UNKNOWN_VACCINE: Reason.UNKNOWN_VACCINE,
    BadKind.BAD_CITIZEN_ID: Reason.BAD_CITIZEN_ID,
    BadKind.FUTURE_TIME: Reason.FUTURE_TIME,
    BadKind.NOT_JSON: Reason.NOT_JSON,
    BadKind.MISSING_HEADER: Reason.MISSING_HEADER,
    BadKind.EXTRA_FIELD: Reason.SCHEMA_VIOLATION,
    BadKind.UNKNOWN_STATION: Reason.UNKNOWN_STATION,
}


class SimEvent:
    """One event as the station sends it. ``change`` is the signed change, built on first
    access (``None`` only for bad events that are not a record change at all)."""

    __slots__ = ("_build", "_change", "bad", "emitted_on", "event_id", "message", "station", "time")

    def __init__(
        self,
        event_id: str,
        station: str,
        time: datetime,
        emitted_on: date,
        message: KafkaMessage,
        change: RecordChange | None = None,
        bad: BadKind | None = None,
        build: Callable[[], RecordChange] | None = None,
    ) -> None:
        self.event_id = event_id
        self.station = station
        self.time = time
        self.emitted_on = emitted_on
        self.message = message
        self.bad = bad
        self._change = change
        self._build = build

    @property
    def change(self) -> RecordChange | None:
        if self._change is None and self._build is not None:
            self._change = self._build()
            self._build = None
        return self._change

    @property
    def expected_reason(self) -> Reason | None:
        return EXPECTED_REASON[self.bad] if self.bad is not None else None

    @property
    def late(self) -> bool:
        """Sent on a later day than it happened (the station was offline)."""
        return self.emitted_on > (self.time + timedelta(hours=7)).date()

    def json_line(self) -> bytes:
        """The CloudEvents structured-mode line of this event (``tuyen publish`` input)."""
        attrs: dict[str, Any] = {}
        for name, raw in self.message.headers:
            if name.startswith("ce_"):
                attrs[name[3:]] = raw.decode()
        attrs["datacontenttype"] = "application/json"
        try:
            attrs["data"] = orjson.loads(self.message.value)
        except orjson.JSONDecodeError:
            return self.message.value  # not JSON at all: the line is not JSON either
        return orjson.dumps(attrs)

    def __repr__(self) -> str:
        return f"SimEvent({self.event_id}, station={self.station}, bad={self.bad})"


#: Record types a station back-enters from paper registers (``entered_late``).
LATE_ENTRY_TYPES = frozenset(
    {"encounter", "immunization", "disease_case", "antenatal_visit", "birth"}
)


def entered_late(ev: SimEvent, month: str, share: float) -> bool:
    """A deterministic sample of whole records (every version) entered in or after
    ``month``: the records a demo or a test sends only after the month was signed off (a
    paper register back-entered late), so "latest" differs from "as submitted"."""
    change = ev.change
    if ev.bad is not None or change is None or change.record_type.value not in LATE_ENTRY_TYPES:
        return False
    digest = hashlib.sha256(change.record_id.encode()).digest()
    entered = (change.time + timedelta(hours=7)).strftime("%Y-%m")
    return digest[0] < 256 * share and entered >= month


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """The last valid change of a record: its state after corrections and deletions."""

    station: str
    time: datetime
    version: int
    deleted: bool
    data: dict[str, Any] | None
    event_id: str


@dataclass
class Truth:
    """Ground truth, filled while the events are iterated (complete once exhausted)."""

    records: dict[tuple[str, str], TruthRecord] = field(default_factory=dict)
    valid_event_ids: set[str] = field(default_factory=set)
    bad_event_ids: dict[str, Reason] = field(default_factory=dict)
    bad_kinds: dict[str, BadKind] = field(default_factory=dict)
    late_event_ids: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    stations: tuple[str, ...] = ()
    population: dict[str, int] = field(default_factory=dict)
    simulated_people: dict[str, int] = field(default_factory=dict)
    offline: dict[str, tuple[date, date]] = field(default_factory=dict)

    def live_records(self) -> dict[tuple[str, str], TruthRecord]:
        """Records whose final state is not deleted."""
        return {k: v for k, v in self.records.items() if not v.deleted}


@dataclass
class SimulationResult:
    """``events`` is a one-shot iterator; ``truth`` is complete once it is exhausted."""

    events: Iterator[SimEvent]
    truth: Truth
    stations: tuple[str, ...]
    start: date
    days: int
