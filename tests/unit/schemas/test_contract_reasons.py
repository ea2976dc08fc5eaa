"""Every reason the contract layer can detect is raised by a crafted input, and only that one."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import (
    REASON_DESCRIPTIONS,
    ContractViolation,
    DevKeyRegistry,
    KafkaMessage,
    Reason,
    SignerKey,
    StaticKeyRegistry,
    decode,
    encode,
    from_json_line,
    sign,
    verify,
)
from schemas.examples import example_change

REG = DevKeyRegistry(b"test-seed")
NOW = datetime(2025, 7, 1, tzinfo=UTC)
Mutator = Callable[[KafkaMessage], tuple[bytes | None, list[tuple[str, Any]]]]

# raised by the validator in streams/ (need the hierarchy or state), not by this package
STATEFUL = {
    Reason.UNKNOWN_STATION,
    Reason.CLOSED_STATION,
    Reason.BEFORE_STATION_OPENED,
    Reason.DUPLICATE_EVENT,
    Reason.REPLAY_STALE_VERSION,
    Reason.DELETE_UNKNOWN_RECORD,
    Reason.EVENT_TOO_OLD,
    Reason.SIGNER_NOT_AUTHORISED,  # the role a record type needs: checked by the validator
    Reason.WRONG_PARTITION,
    Reason.VERSION_JUMP,
    Reason.NOT_RECORD_HOLDER,
    Reason.PROCESSING_ERROR,
    Reason.OUTPUT_REJECTED,
}


def good(record_type: str = "encounter", op: str = "upsert") -> KafkaMessage:
    change = example_change(record_type, op=op)
    return encode(sign(change, REG.signing_key(change.signer)))


def header(name: str, value: Any) -> Mutator:
    def m(msg: KafkaMessage) -> tuple[bytes | None, list[tuple[str, Any]]]:
        return msg.value, [(k, value if k == name else v) for k, v in msg.headers]

    return m


def drop_header(name: str) -> Mutator:
    def m(msg: KafkaMessage) -> tuple[bytes | None, list[tuple[str, Any]]]:
        return msg.value, [(k, v) for k, v in msg.headers if k != name]

    return m


def add_header(name: str, value: bytes, times: int = 1) -> Mutator:
    def m(msg: KafkaMessage) -> tuple[bytes | None, list[tuple[str, Any]]]:
        return msg.value, [*msg.headers, *[(name, value)] * times]

    return m


def raw(value: bytes | None) -> Mutator:
    return lambda msg: (value, list(msg.headers))


def field(path: str, value: Any, *, delete: bool = False) -> Mutator:
    """Set (or delete) ``path`` (dot-separated, ints index lists) in the value object."""

    def m(msg: KafkaMessage) -> tuple[bytes | None, list[tuple[str, Any]]]:
        obj = orjson.loads(msg.value)
        parts = path.split(".")
        node = obj
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
        if delete:
            del node[last]
        else:
            node[last] = value
        return orjson.dumps(obj), list(msg.headers)

    return m


def on(record_type: str, mutator: Mutator, op: str = "upsert") -> tuple[str, str, Mutator]:
    return record_type, op, mutator


CASES: list[tuple[Reason, tuple[str, str, Mutator]]] = [
    (Reason.EMPTY_VALUE, on("encounter", raw(None))),
    (Reason.OVERSIZED, on("encounter", raw(b" " * (300 * 1024)))),
    (Reason.NOT_JSON, on("encounter", raw(b"{not json"))),
    (Reason.NOT_OBJECT, on("encounter", raw(b"[1, 2]"))),
    (Reason.MISSING_HEADER, on("encounter", drop_header("ce_id"))),
    (Reason.BAD_HEADER, on("encounter", header("ce_specversion", b"0.3"))),
    (Reason.BAD_CONTENT_TYPE, on("encounter", header("content-type", b"application/avro"))),
    (
        Reason.BAD_EVENT_ID,
        on("encounter", header("ce_id", b"4a3f4c1e-8a55-4b1c-9e5c-3f2a1b0c9d8e")),
    ),
    (Reason.BAD_TIME, on("encounter", header("ce_time", b"2025-01-15 12:00"))),
    (Reason.FUTURE_TIME, on("encounter", header("ce_time", b"2025-07-01T01:00:00Z"))),
    (Reason.BAD_SOURCE, on("encounter", header("ce_source", b"clinic/4"))),
    (Reason.BAD_DATASCHEMA, on("encounter", header("ce_dataschema", b"person/v1"))),
    (Reason.TYPE_MISMATCH, on("encounter", header("ce_type", b"vn.health.encounter.delete"))),
    (Reason.SUBJECT_MISMATCH, on("encounter", header("ce_subject", b"0123456789:other"))),
    (Reason.SOURCE_MISMATCH, on("bed_snapshot", header("ce_source", b"station/00007"))),
    (Reason.KEY_MISMATCH, on("encounter", field("data.health_id", "0123456780"))),
    (Reason.UNKNOWN_RECORD_TYPE, on("encounter", field("record_type", "surgery"))),
    (Reason.UNKNOWN_SCHEMA_MAJOR, on("encounter", header("ce_dataschema", b"encounter/v9"))),
    (Reason.BAD_OP, on("encounter", field("op", "merge"))),
    (Reason.BAD_RECORD_ID, on("encounter", lambda m: _record_id(m, "visit-1"))),
    (Reason.BAD_VERSION, on("encounter", field("record_version", 0))),
    (Reason.BAD_SEQ, on("encounter", field("station_seq", -3))),
    (Reason.BAD_SIGNER, on("encounter", field("signer", "nurse lan"))),
    (Reason.MISSING_FIELD, on("encounter", field("station_seq", None, delete=True))),
    (Reason.SCHEMA_VIOLATION, on("encounter", field("data.favourite_colour", "blue"))),
    (Reason.WRONG_TYPE, on("encounter", field("data.diagnoses", "I10"))),
    (Reason.MISSING_DATA, on("encounter", field("data", None))),
    (Reason.DATA_ON_DELETE, on("encounter", field("data", {"health_id": "0123456789"}), "delete")),
    (Reason.BAD_HEALTH_ID, on("person", lambda m: _person_id(m, "01234567AB"))),
    (Reason.BAD_CITIZEN_ID, on("person", field("data.citizen_id", "099123456789"))),
    (Reason.BAD_PHONE, on("person", field("data.phone", "+84912345678"))),
    (Reason.BAD_ICD10, on("encounter", field("data.diagnoses.0", "I10.999"))),
    (Reason.UNKNOWN_VACCINE, on("immunization", field("data.vaccine", "SPUTNIK"))),
    (Reason.UNKNOWN_CODE, on("disease_case", field("data.disease", "ZOMBIE_PLAGUE"))),
    (Reason.BAD_FORMAT, on("person", field("data.residence_commune", "4"))),
    (Reason.BAD_DATE, on("encounter", field("data.encounter_date", "15/01/2025"))),
    (Reason.FUTURE_DATE, on("encounter", field("data.encounter_date", "2025-07-02"))),
    (Reason.OUT_OF_RANGE, on("immunization", field("data.dose_number", 4))),
    (Reason.INCONSISTENT, on("death", field("data.age_days", 30))),
    (Reason.HEADERS_TOO_LARGE, on("encounter", add_header("x-pad", b"x" * 10_000))),
    (Reason.HEADERS_TOO_LARGE, on("encounter", add_header("x", b"", times=40))),
    (Reason.UNKNOWN_HEADER, on("encounter", add_header("ce_comment", b"hi"))),
    (Reason.UNKNOWN_HEADER, on("encounter", add_header("traceparent", b"00-ab-cd-01"))),
    (Reason.RESERVED_HEADER, on("encounter", add_header("tuyen_reason", b"tampered"))),
    (Reason.BAD_VERSION, on("encounter", field("record_version", 2**63))),
    (Reason.BAD_VERSION, on("encounter", field("record_version", 2**53))),
    (Reason.BAD_SEQ, on("encounter", field("station_seq", 2**64 - 1))),
    (Reason.BAD_SIGNER, on("encounter", field("key_id", "k1\n"))),
    (Reason.BAD_SIGNER, on("encounter", field("key_id", 7))),
    (Reason.BAD_TIME, on("encounter", header("ce_time", b"2025-01-15T12:00:00Z\n"))),
    (Reason.BAD_SOURCE, on("encounter", header("ce_source", b"station/00004\n"))),
    (Reason.BAD_DATASCHEMA, on("encounter", header("ce_dataschema", b"encounter/v2\n"))),
]


def _record_id(msg: KafkaMessage, rid: str) -> tuple[bytes | None, list[tuple[str, Any]]]:
    value, headers = field("record_id", rid)(msg)
    return value, [(k, rid.encode() if k == "ce_subject" else v) for k, v in headers]


def _person_id(msg: KafkaMessage, hid: str) -> tuple[bytes | None, list[tuple[str, Any]]]:
    """A bad health id everywhere it appears, so the format rule (not a mismatch) fires."""
    value, headers = _record_id(msg, hid)
    return field("data.health_id", hid)(KafkaMessage(msg.key, value or b"", headers))


@pytest.mark.parametrize(("reason", "case"), CASES, ids=[r.value for r, _ in CASES])
def test_crafted_input_raises_its_reason(reason: Reason, case: tuple[str, str, Mutator]) -> None:
    record_type, op, mutate = case
    value, headers = mutate(good(record_type, op))
    with pytest.raises(ContractViolation) as info:
        decode(value, headers, now=NOW)
    assert info.value.reason is reason, info.value.message
    assert info.value.message


def test_kafka_key_mismatch() -> None:
    msg = good()
    with pytest.raises(ContractViolation) as info:
        decode(msg.value, msg.headers, key=b"9999999999", now=NOW)
    assert info.value.reason is Reason.KEY_MISMATCH


def test_duplicated_or_undecodable_header_is_bad_header() -> None:
    msg = good()
    for headers in (
        [*msg.headers, ("ce_id", b"x")],
        [(k, b"\xff\xfe" if k == "ce_subject" else v) for k, v in msg.headers],
    ):
        with pytest.raises(ContractViolation) as info:
            decode(msg.value, headers, now=NOW)
        assert info.value.reason is Reason.BAD_HEADER


def _signed_change_reason(registry: Any, mutate: Callable[[dict[str, Any]], None]) -> Reason:
    msg = good("immunization")
    change = decode(msg.value, msg.headers, now=NOW)
    obj = orjson.loads(msg.value)
    mutate(obj)
    altered = (
        decode(orjson.dumps(obj), msg.headers, now=NOW)
        if obj != orjson.loads(msg.value)
        else change
    )
    with pytest.raises(ContractViolation) as info:
        verify(altered, registry)
    return info.value.reason


def test_signature_reasons() -> None:
    def tamper(o: dict[str, Any]) -> None:
        o["data"]["dose_number"] = 3

    def garble(o: dict[str, Any]) -> None:
        o["signature"] = "not base64!"

    def foreign_signer(o: dict[str, Any]) -> None:
        o["signer"] = "hw-00007-1"

    def stranger(o: dict[str, Any]) -> None:
        o["signer"] = "hw-00004-99"

    assert _signed_change_reason(REG, tamper) is Reason.TAMPERED
    assert _signed_change_reason(REG, garble) is Reason.BAD_SIGNATURE
    assert _signed_change_reason(REG, foreign_signer) is Reason.SIGNATURE_STATION_MISMATCH
    assert _signed_change_reason(REG, stranger) is Reason.SIGNER_NOT_REGISTERED
    expired = StaticKeyRegistry(
        [
            SignerKey(
                "hw-00004-1",
                "00004",
                bytes(REG.signing_key("hw-00004-1").verify_key),
                valid_to=datetime(2024, 1, 1, tzinfo=UTC),
            )
        ]
    )
    assert _signed_change_reason(expired, lambda o: None) is Reason.SIGNER_KEY_EXPIRED


def test_every_stateless_reason_is_covered() -> None:
    covered = {r for r, _ in CASES} | {
        Reason.TAMPERED,
        Reason.BAD_SIGNATURE,
        Reason.SIGNATURE_STATION_MISMATCH,
        Reason.SIGNER_NOT_REGISTERED,
        Reason.SIGNER_KEY_EXPIRED,
        Reason.SIGNER_KEY_REVOKED,  # tests/unit/schemas/test_keys.py
        Reason.UNKNOWN_KEY_ID,  # tests/unit/schemas/test_keys.py
    }
    assert set(Reason) - STATEFUL == covered
    assert len(set(Reason)) >= 25
    assert set(REASON_DESCRIPTIONS) == set(Reason)


def test_json_lines_reasons() -> None:
    with pytest.raises(ContractViolation) as info:
        from_json_line(b"{oops", now=NOW)
    assert info.value.reason is Reason.NOT_JSON
    with pytest.raises(ContractViolation) as info:
        from_json_line(b'{"specversion": "1.0", "extra": 1, "data": {}}', now=NOW)
    assert info.value.reason is Reason.SCHEMA_VIOLATION


def test_violation_is_terminal_and_picklable() -> None:
    import pickle

    exc = ContractViolation(Reason.BAD_ICD10, "bad code", field="data.diagnoses.0")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.reason, back.message, back.field) == (Reason.BAD_ICD10, "bad code", exc.field)
    assert exc.retryable is False
    assert str(exc).startswith("bad_icd10: ")


def test_clock_skew_is_tolerated() -> None:
    msg = good()
    t = (NOW + timedelta(minutes=4)).isoformat().encode()
    headers = [(k, t if k == "ce_time" else v) for k, v in msg.headers]
    assert decode(msg.value, headers, now=NOW).time == NOW + timedelta(minutes=4)
    assert base64  # imported for symmetry with the signing tests
