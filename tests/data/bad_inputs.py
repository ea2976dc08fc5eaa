"""Event fixtures for the stream tests: signed valid changes and the bad-input corpus.

``EventFactory`` builds signed Kafka messages with development-derived keys (the same seed
the stream config uses) and the key registry that verifies them (:meth:`EventFactory.
key_registry`: those keys as a real registry, plus a rotated, a revoked and a forged signer).
``bad_inputs(factory)`` returns the corpus: the classic cases here and the hostile ones of
``tests/data/hostile_inputs.py``, each with the DLQ reason it must get; some need valid
*setup* messages to be processed before them (the original of a replayed id, the record a
stale version targets), some must be published on another partition than murmur2's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas import (
    DevKeyRegistry,
    KafkaMessage,
    Reason,
    RecordChange,
    Revocation,
    SignerKey,
    StaticKeyRegistry,
    dev_signing_key,
    encode,
    make_change,
    sign,
)
from schemas.examples import example_data, example_record_id
from schemas.keys import DEV_KEY_SEED

KEY_SEED = DEV_KEY_SEED.decode()  # the seed the stream worker uses by default
STATIONS = ("00004", "00367", "03712", "20977", "26977", "27163", "03980")
CLOSED_STATION = "00001"  # a commune that closed on 2025-07-01 (merged into 00097)
NEW_STATION = "03980"  # opened on 2025-07-01
RECORD_TYPES = (
    "person",
    "encounter",
    "immunization",
    "chronic_followup",
    "antenatal_visit",
    "birth",
    "death",
    "disease_case",
    "staff_snapshot",
    "bed_snapshot",
    "equipment_snapshot",
    "stock_snapshot",
)


#: signers of station 00004 with special keys in :meth:`EventFactory.key_registry`
ROTATED = "hw-00004-4"  # two keys: ROTATED_OLD (revoked yesterday) and ROTATED_NEW
ROTATED_OLD, ROTATED_NEW = "k2025", "k2026"
REVOKED = "hw-00004-5"  # its only key was revoked yesterday
FORGED = "hw-00004-6"  # registered with a key that is not the development-derived one
SIGNERS_PER_STATION = 3  # EventFactory signs with hw-<station>-1..3


@dataclass(frozen=True)
class Case:
    """One bad input and the reason it must be dead-lettered with (``wrong_partition``:
    publish it on another partition than murmur2 gives its key)."""

    name: str
    reason: Reason
    message: KafkaMessage
    setup: tuple[KafkaMessage, ...] = ()
    wrong_partition: bool = False


@dataclass
class EventFactory:
    """Signed changes for tests. ``now`` anchors event times (default: the wall clock)."""

    seed: str = KEY_SEED
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _seq: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry = DevKeyRegistry(self.seed.encode())
        self.revoked_at = self.now - timedelta(days=1)

    def signing_key(self, signer: str, key_id: str | None = None) -> Any:
        """The private key of ``signer`` (of its key ``key_id`` when given)."""
        if key_id is not None:
            return dev_signing_key(self.seed.encode(), f"{signer}#{key_id}")
        return self.registry.signing_key(signer)

    def key_registry(
        self, stations: tuple[str, ...] = (), per_station: int = 3
    ) -> StaticKeyRegistry:
        """A real key registry (not the development one) holding: the development-derived
        keys of hw-<station>-1..``per_station`` for the corpus's stations and ``stations``;
        ROTATED with two key ids (the older revoked yesterday); REVOKED (revoked yesterday);
        FORGED with a key that is not the development-derived one."""
        codes = sorted({*STATIONS, "00007", CLOSED_STATION, NEW_STATION, *stations})
        keys = [
            SignerKey(s, code, bytes(self.signing_key(s).verify_key))
            for code in codes
            for s in (f"hw-{code}-{n}" for n in range(1, max(per_station, 3) + 1))
            if s not in {ROTATED, REVOKED, FORGED}
        ]
        keys += [
            SignerKey(ROTATED, "00004", bytes(self.signing_key(ROTATED, k).verify_key), key_id=k)
            for k in (ROTATED_OLD, ROTATED_NEW)
        ]
        keys.append(SignerKey(REVOKED, "00004", bytes(self.signing_key(REVOKED).verify_key)))
        forged = dev_signing_key(b"not-the-dev-seed", FORGED)
        keys.append(SignerKey(FORGED, "00004", bytes(forged.verify_key)))
        revocations = [
            Revocation(ROTATED, self.revoked_at, ROTATED_OLD, "laptop stolen"),
            Revocation(REVOKED, self.revoked_at, None, "left the station"),
        ]
        return StaticKeyRegistry(keys, revocations)

    def health_id(self) -> str:
        return f"{self.rng.randrange(1, 10**10):010d}"

    def next_seq(self, station: str) -> int:
        self._seq[station] = self._seq.get(station, 0) + 1
        return self._seq[station]

    def change(
        self,
        record_type: str = "encounter",
        *,
        station: str = "00004",
        health_id: str | None = None,
        op: str = "upsert",
        version: int = 1,
        when: datetime | None = None,
        data: dict[str, Any] | None = None,
        record_id: str | None = None,
        local_id: str | None = None,
        event_id: str | None = None,
        signer: str | None = None,
        major: int | None = None,
        key_id: str | None = None,
        seq: int | None = None,
    ) -> RecordChange:
        """A signed change (data from ``schemas.examples`` unless given)."""
        when = when or self.now - timedelta(hours=self.rng.randrange(1, 20 * 24))
        hid = health_id or self.health_id()
        day = when.date()
        if data is None and op == "upsert":
            data = example_data(record_type, major, health_id=hid, on=day - timedelta(days=0))
            if record_type == "person":
                data.pop("citizen_id", None)
                data["residence_commune"] = station
            if record_type == "birth":
                data["child_health_id"] = self.health_id()
        rid = record_id or example_record_id(
            record_type,
            health_id=hid,
            station=station,
            period=f"{when.astimezone(UTC):%Y-%m}" if data is None else str(day)[:7],
            local_id=local_id or f"r{self.rng.randrange(10**9)}",
        )
        if data is not None and "period" in data:
            rid = example_record_id(record_type, station=station, period=data["period"])
        head = record_type == "report_submission"  # signed by the station head (hw-…-1)
        signer = signer or f"hw-{station}-{1 if head else self.rng.randrange(1, 4)}"
        change = make_change(
            station=station,
            record_type=record_type,
            record_id=rid,
            op=op,
            record_version=version,
            station_seq=seq if seq is not None else self.next_seq(station),
            signer=signer,
            data=data if op == "upsert" else None,
            time=when,
            event_id=event_id,
            schema_major=major,
            now=max(when, self.now),
        )
        if key_id is not None:
            return sign(change, self.signing_key(signer, key_id), key_id=key_id)
        return sign(change, self.signing_key(signer)) if self.registry.lookup(signer) else change

    def again(self, change: RecordChange, **kw: Any) -> RecordChange:
        """Another change of ``change``'s record (its type, station, health id and record id);
        ``kw`` as for :meth:`change`."""
        return self.change(
            change.record_type.value,
            station=change.station,
            health_id=change.record_id.split(":")[0],
            record_id=change.record_id,
            **kw,
        )

    def person(
        self, station: str, health_id: str | None = None, version: int = 1, op: str = "upsert"
    ) -> RecordChange:
        """A person record change from ``station`` (a new person unless ``health_id``)."""
        return self.change("person", station=station, health_id=health_id, version=version, op=op)

    def transfer(self, station: str, health_id: str, to: str, released: int) -> RecordChange:
        """``station`` hands person ``health_id`` (at ``person_record_version`` ``released``)
        to station ``to``."""
        data = {
            "health_id": health_id,
            "to_station": to,
            "transfer_date": (self.now - timedelta(hours=1)).date().isoformat(),
            "person_record_version": released,
            "reason": "moved",
        }
        return self.change("person_transfer", station=station, health_id=health_id, data=data)

    def message(self, change: RecordChange) -> KafkaMessage:
        return encode(change)

    def valid(self, n: int, *, record_types: tuple[str, ...] = RECORD_TYPES) -> list[KafkaMessage]:
        """``n`` valid messages of mixed record types and stations, each a new record
        (person-centred types get fresh health ids; a resource snapshot is used only while
        its (station, month) is still free, else an encounter)."""
        out = []
        used: set[tuple[str, str, str]] = getattr(self, "_snapshots", set())
        self._snapshots = used
        for i in range(n):
            rt = record_types[i % len(record_types)]
            station = STATIONS[i % len(STATIONS)]
            when = self.now - timedelta(minutes=5 + i % 10000)
            if rt.endswith("_snapshot"):
                months_back = (i // len(record_types)) % 12
                when = self.now - timedelta(days=31 * months_back + 1)
                if station == NEW_STATION:
                    station = "00004"
                slot = (station, rt, f"{when:%Y-%m}")
                if slot in used:
                    rt, when = "encounter", self.now - timedelta(minutes=5 + i % 10000)
                else:
                    used.add(slot)
            out.append(self.message(self.change(rt, station=station, when=when)))
        return out


def _mutate_value(msg: KafkaMessage, **changes: Any) -> KafkaMessage:
    obj = orjson.loads(msg.value)
    for k, v in changes.items():
        if v is _DROP:
            obj.pop(k, None)
        else:
            obj[k] = v
    return KafkaMessage(msg.key, orjson.dumps(obj), list(msg.headers))


def _mutate_data(msg: KafkaMessage, **changes: Any) -> KafkaMessage:
    obj = orjson.loads(msg.value)
    obj["data"].update(changes)
    return KafkaMessage(msg.key, orjson.dumps(obj), list(msg.headers))


def _header(msg: KafkaMessage, name: str, value: bytes | None) -> KafkaMessage:
    headers = [(k, v) for k, v in msg.headers if k != name]
    if value is not None:
        headers.append((name, value))
    return KafkaMessage(msg.key, msg.value, headers)


_DROP = object()


def bad_inputs(f: EventFactory) -> list[Case]:
    """The corpus (≥ 25 distinct reasons)."""
    enc = f.message(f.change("encounter"))
    person = f.message(f.change("person"))
    cases: list[Case] = []

    def add(name: str, reason: Reason, msg: KafkaMessage, *setup: KafkaMessage) -> None:
        cases.append(Case(name, reason, msg, tuple(setup)))

    add("not_json", Reason.NOT_JSON, KafkaMessage(enc.key, b"{not json", list(enc.headers)))
    add("not_object", Reason.NOT_OBJECT, KafkaMessage(enc.key, b"[1, 2, 3]", list(enc.headers)))
    add("empty_value", Reason.EMPTY_VALUE, KafkaMessage(enc.key, None, list(enc.headers)))  # type: ignore[arg-type]
    big = orjson.loads(enc.value)
    big["data"]["padding"] = "x" * (300 * 1024)
    add("oversized", Reason.OVERSIZED, KafkaMessage(enc.key, orjson.dumps(big), list(enc.headers)))
    add("missing_header", Reason.MISSING_HEADER, _header(enc, "ce_id", None))
    add("bad_specversion", Reason.BAD_HEADER, _header(enc, "ce_specversion", b"0.3"))
    add("bad_content_type", Reason.BAD_CONTENT_TYPE, _header(enc, "content-type", b"text/xml"))
    add("bad_event_id", Reason.BAD_EVENT_ID, _header(enc, "ce_id", b"not-a-uuid"))
    add("bad_time", Reason.BAD_TIME, _header(enc, "ce_time", b"yesterday"))
    add("bad_source", Reason.BAD_SOURCE, _header(enc, "ce_source", b"clinic/7"))
    add("type_mismatch", Reason.TYPE_MISMATCH, _header(enc, "ce_type", b"vn.health.birth.upsert"))
    add("subject_mismatch", Reason.SUBJECT_MISMATCH, _header(enc, "ce_subject", b"0000000001:x"))
    add(
        "bad_dataschema",
        Reason.BAD_DATASCHEMA,
        _header(enc, "ce_dataschema", b"person/v1"),
    )
    add(
        "key_mismatch",
        Reason.KEY_MISMATCH,
        KafkaMessage(b"9999999999", enc.value, list(enc.headers)),
    )
    rt_bad = _mutate_value(enc, record_type="xray")
    add(
        "unknown_record_type",
        Reason.UNKNOWN_RECORD_TYPE,
        _header(
            _header(rt_bad, "ce_type", b"vn.health.xray.upsert"),
            "ce_dataschema",
            b"xray/v1",
        ),
    )
    add(
        "unknown_schema_major",
        Reason.UNKNOWN_SCHEMA_MAJOR,
        _header(enc, "ce_dataschema", b"encounter/v9"),
    )
    add("extra_value_field", Reason.SCHEMA_VIOLATION, _mutate_value(enc, comment="hi"))
    add("missing_field", Reason.MISSING_FIELD, _mutate_value(enc, signer=_DROP))
    add("wrong_type", Reason.WRONG_TYPE, _mutate_value(enc, record_version="2"))
    add("bad_version", Reason.BAD_VERSION, _mutate_value(enc, record_version=0))
    add("bad_seq", Reason.BAD_SEQ, _mutate_value(enc, station_seq=-4))
    add("bad_signer", Reason.BAD_SIGNER, _mutate_value(enc, signer="!nobody"))
    add("bad_op", Reason.BAD_OP, _mutate_value(enc, op="merge"))
    add("missing_data", Reason.MISSING_DATA, _mutate_value(enc, data=None))
    add(
        "bad_health_id",
        Reason.BAD_HEALTH_ID,
        _mutate_data(f.message(f.change("birth")), child_health_id="12345"),
    )
    add("bad_phone", Reason.BAD_PHONE, _mutate_data(person, phone="12"))
    add("bad_icd10", Reason.BAD_ICD10, _mutate_data(enc, diagnoses=["ZZZ.99"]))
    add(
        "unknown_vaccine",
        Reason.UNKNOWN_VACCINE,
        _mutate_data(f.message(f.change("immunization")), vaccine="ELIXIR"),
    )
    add("extra_data_field", Reason.SCHEMA_VIOLATION, _mutate_data(enc, colour="blue"))
    add(
        "future_time",
        Reason.FUTURE_TIME,
        f.message(f.change("encounter", when=f.now + timedelta(days=2))),
    )
    add(
        "too_old",
        Reason.EVENT_TOO_OLD,
        f.message(f.change("encounter", when=f.now - timedelta(days=3 * 365))),
    )
    add(
        "before_station_opened",
        Reason.BEFORE_STATION_OPENED,
        f.message(
            f.change("encounter", station=NEW_STATION, when=datetime(2025, 6, 1, tzinfo=UTC))
        ),
    )
    add(
        "unknown_station",
        Reason.UNKNOWN_STATION,
        f.message(f.change("encounter", station="99999", signer="hw-99999-1")),
    )
    # No closed_station case: every closed station of the default hierarchy has a successor
    # station (the 2025 commune merger), whose site its later events are accepted as
    # (tests/unit/schemas/test_service_dates.py covers both outcomes).
    add(
        "other_stations_key",
        Reason.SIGNATURE_STATION_MISMATCH,
        f.message(f.change("encounter", station="00004", signer="hw-00007-1")),
    )
    add("tampered", Reason.TAMPERED, _mutate_data(enc, encounter_type="inpatient"))
    add(
        "signer_not_registered",
        Reason.SIGNER_NOT_REGISTERED,
        f.message(f.change("encounter", signer="hw-00004-99")),
    )
    add("bad_signature", Reason.BAD_SIGNATURE, _mutate_value(enc, signature="AAAA"))
    # replay of an old event id with other content (re-signed)
    original = f.change("encounter")
    replay = f.again(original, version=2, event_id=original.id, when=original.time)
    add("replayed_event_id", Reason.DUPLICATE_EVENT, f.message(replay), f.message(original))
    first = f.change("immunization")
    second = f.again(first, version=2, when=first.time)
    stale = f.again(first, version=1, when=first.time)
    add(
        "stale_version",
        Reason.REPLAY_STALE_VERSION,
        f.message(stale),
        f.message(first),
        f.message(second),
    )
    add(
        "delete_never_seen",
        Reason.DELETE_UNKNOWN_RECORD,
        f.message(f.change("encounter", op="delete")),
    )
    from tests.data.hostile_inputs import hostile_inputs  # it imports this module

    return cases + hostile_inputs(f)
