"""The SQLite outbox and the StationClient's counters (no broker: nothing is delivered)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.config import DEV_KEY_SEED, ProducerConfig
from producers.exceptions import OutboxLocked, SequenceError
from producers.sdk import Outbox, StationClient
from schemas import DevKeyRegistry, KafkaMessage, decode, verify
from schemas.examples import example_data
from schemas.kafka import KafkaConnection
from schemas.payloads.clinical import EncounterV2
from schemas.payloads.person import PersonV1
from schemas.payloads.vital_events import BirthV1

NOWHERE = "127.0.0.1:9"  # nothing listens: every event stays pending


def _cfg(tmp_path: Path, name: str = "o.db") -> ProducerConfig:
    return ProducerConfig(
        kafka=KafkaConnection(bootstrap=NOWHERE),
        topic="t",
        outbox_path=tmp_path / name,
        message_timeout_ms=60_000,
    )


def _msg(i: int) -> tuple[str, KafkaMessage]:
    return f"id-{i}", KafkaMessage(b"k", f"v{i}".encode(), [("ce_id", f"id-{i}".encode())])


def test_outbox_keeps_order_and_removes_only_given_rows(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    batch = box.append("t", [_msg(i) for i in range(10)], station_seq=10)
    assert list(batch.rowids) == list(range(1, 11))
    assert batch.rows() == box.pending()  # what is sent from memory is what is stored
    box.remove([2, 5])
    assert [r.event_id for r in box.pending()] == [f"id-{i}" for i in range(10) if i not in (1, 4)]
    assert box.pending(from_rowid=7, limit=2)[0].rowid == 7
    assert box.get([9, 3])[0].headers == [("ce_id", b"id-2")]
    box.close()
    again = Outbox(tmp_path / "a.db")
    assert again.count() == 8 and again.station_seq == 10
    assert again.append("t", [_msg(99)]).first_rowid == 11  # rowids keep increasing
    again.close()


def test_one_process_per_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    with pytest.raises(OutboxLocked):
        Outbox(tmp_path / "a.db")
    box.close()


def test_counters_monotonic_across_reopen(tmp_path: Path) -> None:
    person = PersonV1.model_validate(example_data("person"))
    client = StationClient.dev("00004", _cfg(tmp_path))
    with client.batch():
        accepted = [client.upsert_person(person) for _ in range(3)]
    assert [a.station_seq for a in accepted] == [1, 2, 3]
    assert [a.record_version for a in accepted] == [1, 2, 3]
    client.close(timeout=0.2)
    client = StationClient.dev("00004", _cfg(tmp_path))
    assert client.station_seq == 3
    assert client.pending == 3  # nothing confirmed: everything still there
    nxt = client.upsert_person(person)
    assert (nxt.station_seq, nxt.record_version) == (4, 4)
    assert client.outbox.event_ids() == [a.event_id for a in accepted] + [nxt.event_id]
    client.close(timeout=0.2)


def test_failed_batch_uses_no_counters(tmp_path: Path) -> None:
    person = PersonV1.model_validate(example_data("person"))
    client = StationClient.dev("00004", _cfg(tmp_path))
    with pytest.raises(RuntimeError), client.batch():
        client.upsert_person(person)
        raise RuntimeError("vendor code failed")
    assert client.pending == 0 and client.station_seq == 0
    assert client.upsert_person(person).station_seq == 1
    client.close(timeout=0.2)


def test_submit_rejects_other_station_and_old_seq(tmp_path: Path) -> None:
    from schemas import make_change, sign
    from schemas.keys import dev_signing_key

    client = StationClient.dev("00004", _cfg(tmp_path))
    change = sign(
        make_change(
            station="00004",
            record_type="person",
            record_id="0123456789",
            op="upsert",
            record_version=1,
            station_seq=5,
            signer="hw-00004-1",
            data=example_data("person"),
        ),
        dev_signing_key(DEV_KEY_SEED, "hw-00004-1"),
    )
    assert client.submit([change])[0].station_seq == 5
    with pytest.raises(SequenceError):
        client.submit([change])
    other = change.model_copy(update={"station": "00001"})
    with pytest.raises(SequenceError):
        client.submit([other])
    client.close(timeout=0.2)


_health_ids = st.from_regex(r"[1-9][0-9]{9}", fullmatch=True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hid=_health_ids,
    dx=st.lists(st.sampled_from(["J06", "I10", "E11.9", "A09", "K29"]), min_size=1, max_size=4),
    systolic=st.integers(90, 200),
    local=st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True),
)
def test_builders_round_trip(
    tmp_path_factory: pytest.TempPathFactory, hid: str, dx: list[str], systolic: int, local: str
) -> None:
    """What a builder stores decodes and verifies to the same record."""
    tmp = tmp_path_factory.mktemp("rt")
    payload = EncounterV2.model_validate(
        {
            "health_id": hid,
            "encounter_date": "2025-01-15",
            "diagnoses": dx,
            "vitals": {"blood_pressure": {"systolic_mmhg": systolic, "diastolic_mmhg": 70}},
        }
    )
    client = StationClient.dev("00004", _cfg(tmp))
    t = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)
    acc = client.upsert_encounter(payload, local_id=local, time=t)
    row = client.outbox.pending()[0]
    change = decode(row.value, row.headers, key=row.key)
    verify(change, DevKeyRegistry(DEV_KEY_SEED))
    assert change.id == acc.event_id and change.record_id == f"{hid}:{local}"
    assert change.time == t and change.record_version == 1
    assert change.payload() == payload
    gone = client.delete("encounter", change.record_id, time=t)
    assert gone.record_version == 2
    client.close(timeout=0.1)


def test_transfer_and_key_id(tmp_path: Path) -> None:
    """The SDK hands a person over at the last version it sent, and names its key."""
    from schemas import SignerKey, StaticKeyRegistry
    from schemas.keys import dev_signing_key

    key = dev_signing_key(b"sdk-keys", "hw-00004-1#k2")
    client = StationClient.open("00004", "hw-00004-1", key, _cfg(tmp_path), key_id="k2")
    person = PersonV1.model_validate(example_data("person"))
    client.upsert_person(person)
    client.upsert_person(person)
    moved = client.transfer(person.health_id, "00367")
    rows = {r.event_id: r for r in client.outbox.pending()}
    change = decode(rows[moved.event_id].value, rows[moved.event_id].headers)
    assert change.record_type == "person_transfer" and change.key_id == "k2"
    assert change.data is not None and change.data["person_record_version"] == 2
    registry = StaticKeyRegistry(
        [SignerKey("hw-00004-1", "00004", bytes(key.verify_key), key_id="k2")]
    )
    verify(change, registry)
    with pytest.raises(ValueError, match="no version of person"):
        client.transfer("0999999999", "00367")
    client.close(timeout=0.2)


#: Every typed builder and the record type it publishes.
TYPED_BUILDERS = {
    "upsert_person": "person",
    "upsert_encounter": "encounter",
    "upsert_immunization": "immunization",
    "upsert_chronic_followup": "chronic_followup",
    "upsert_chronic_enrolment": "chronic_enrolment",
    "upsert_antenatal_visit": "antenatal_visit",
    "upsert_birth": "birth",
    "upsert_death": "death",
    "upsert_disease_case": "disease_case",
    "upsert_medicine_dispensed": "medicine_dispensed",
    "upsert_staff": "staff_snapshot",
    "upsert_beds": "bed_snapshot",
    "upsert_equipment": "equipment_snapshot",
    "upsert_stock": "stock_snapshot",
}


def test_every_typed_builder_is_upsert_of_its_record_type(tmp_path: Path) -> None:
    """Each typed builder stores its model's record like ``upsert`` (person-centred ones
    under the ``local_id`` given); the class lists every one."""
    from schemas.registry import CURRENT_MAJOR, MODELS, RecordType

    client = StationClient.dev("00004", _cfg(tmp_path))
    assert sorted(n for n in dir(StationClient) if n.startswith("upsert_")) == sorted(
        TYPED_BUILDERS
    )
    t = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)
    for name, record_type in TYPED_BUILDERS.items():
        rt = RecordType(record_type)
        payload = MODELS[rt][CURRENT_MAJOR[rt]].model_validate(example_data(record_type))
        acc = getattr(client, name)(payload, time=t)
        assert (acc.record_type, acc.record_version) == (record_type, 1), name
    local = client.upsert_birth(
        BirthV1.model_validate(example_data("birth")), local_id="b-1", time=t
    )
    assert local.record_id.endswith(":b-1")
    with pytest.raises(TypeError, match="local_id is not taken"):
        person = PersonV1.model_validate(example_data("person"))
        client.upsert_person(person, local_id="p-1")  # type: ignore[call-arg]
    client.close(timeout=0.1)
