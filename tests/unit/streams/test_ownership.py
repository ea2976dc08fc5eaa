"""Record holders and transfers (docs/contract.md §3): a record is changed or deleted only by
the station that holds it; a person record moves with an explicit ``person_transfer`` signed by
the releasing station; a patient's encounters at other stations are their own records."""

from __future__ import annotations

from typing import Any

from schemas import Reason
from streams.config import ValidationPolicy
from streams.pipeline import BatchOutput, BatchProcessor
from streams.state import MemoryState
from streams.validate import Accepted, admit
from tests.data.bad_inputs import EventFactory
from tests.unit.streams.test_validate import dlq_reasons, processor, raw

A, B, C = "00004", "00367", "20977"


FACTORY = EventFactory()


def run(p: BatchProcessor, *changes: Any) -> BatchOutput:
    return p.process(raw([FACTORY.message(c) for c in changes]))


person, transfer = FACTORY.person, FACTORY.transfer


def test_a_person_moves_with_a_transfer_and_the_new_station_holds_the_record() -> None:
    p = processor(FACTORY)
    v1 = person(A)
    hid = v1.record_id
    assert run(p, v1).accepted == 1
    assert run(p, transfer(A, hid, B, 1)).accepted == 1
    assert p.state.get(hid, 0)["h"] == B  # type: ignore[index]
    assert run(p, person(B, hid, 2)).accepted == 1, "the receiving station continues"
    out = run(p, person(A, hid, 3))
    assert dlq_reasons(out) == [Reason.NOT_RECORD_HOLDER.value], "the old one no longer may"
    assert dlq_reasons(run(p, transfer(A, hid, C, 2))) == [Reason.NOT_RECORD_HOLDER.value]
    assert run(p, transfer(B, hid, A, 2)).accepted == 1, "a transfer back undoes a mistake"
    assert run(p, person(A, hid, 3, "delete")).accepted == 1


def test_transfer_rules() -> None:
    p = processor(FACTORY)
    v1 = person(A)
    run(p, v1)
    hid = v1.record_id
    assert dlq_reasons(run(p, transfer(B, hid, C, 1))) == [Reason.NOT_RECORD_HOLDER.value]
    assert dlq_reasons(run(p, transfer(A, hid, B, 2))) == [Reason.INCONSISTENT.value]
    assert dlq_reasons(run(p, transfer(A, FACTORY.health_id(), B, 1))) == [
        Reason.NOT_RECORD_HOLDER.value
    ]
    assert p.state.get(hid, 0)["h"] == A  # type: ignore[index]


def test_encounters_of_a_patient_at_another_station_are_that_stations_records() -> None:
    """Person-centred records other than ``person``: the station that created one holds it.
    A patient seen at another station gets that station's own record (its own local id);
    no station can overwrite or delete another's."""
    p = processor(FACTORY)
    mine = FACTORY.change("encounter", station=A)
    hid = mine.record_id.split(":")[0]
    theirs = FACTORY.change("encounter", station=B, health_id=hid)
    assert run(p, mine, theirs).accepted == 2
    overwrite = FACTORY.change(
        "encounter", station=B, health_id=hid, record_id=mine.record_id, version=2
    )
    delete = FACTORY.change(
        "encounter", station=B, health_id=hid, record_id=mine.record_id, version=2, op="delete"
    )
    out = run(p, overwrite, delete)
    assert dlq_reasons(out) == [Reason.NOT_RECORD_HOLDER.value] * 2
    fix = FACTORY.change("encounter", station=A, health_id=hid, record_id=mine.record_id, version=2)
    assert run(p, fix).accepted == 1


def test_a_state_written_before_holders_existed_gets_its_holder_from_the_next_change() -> None:
    state = MemoryState()
    first = processor(FACTORY).check(raw([FACTORY.message(person(A))]))[0]
    assert isinstance(first, Accepted)
    rid = first.record["record_id"]
    state.put(rid, {"v": 1, "d": False, "ids": [], "c": None}, 0)  # no "h": an old state
    nxt = processor(FACTORY).check(raw([FACTORY.message(person(A, rid, 2))]))[0]
    assert isinstance(nxt, Accepted)
    verdict, _prev = admit(nxt, state, 0)
    assert isinstance(verdict, Accepted)
    assert state.get(rid, 0)["h"] == A  # type: ignore[index]


def test_version_step() -> None:
    p = processor(FACTORY)
    step = ValidationPolicy().max_version_step
    v1 = FACTORY.change("immunization")
    hid, rid = v1.record_id.split(":")[0], v1.record_id

    def version(n: int) -> Any:
        return FACTORY.change("immunization", health_id=hid, record_id=rid, version=n)

    assert run(p, v1).accepted == 1
    assert dlq_reasons(run(p, version(1 + step + 1))) == [Reason.VERSION_JUMP.value]
    assert run(p, version(1 + step)).accepted == 1
    fresh = FACTORY.change("immunization", version=step + 1)
    assert dlq_reasons(run(p, fresh)) == [Reason.VERSION_JUMP.value]
