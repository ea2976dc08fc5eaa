"""Hostile inputs: what an attacker holding a station's credentials would try (issue 11).

Forged and revoked keys, numbers beyond every store's integers, a 1 MB header, a station's
own ``tuyen_*`` headers, strings that match a format only up to a newline, NUL or non-ASCII
digits, changes to records another station holds, transfers that are not the holder's, and
messages on the wrong partition. Each has the reason it must be dead-lettered with; the
signed ones verify against :meth:`tests.data.bad_inputs.EventFactory.key_registry`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from schemas import KafkaMessage, Reason
from tests.data.bad_inputs import (
    FORGED,
    REVOKED,
    ROTATED,
    ROTATED_NEW,
    ROTATED_OLD,
    Case,
    EventFactory,
    _header,
    _mutate_data,
    _mutate_value,
)

__all__ = ["hostile_inputs", "rfc8785_float_event"]

ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"  # str.isdigit() is True for these; [0-9] is not
FULLWIDTH_DIGITS = "０１２３４５６７８９"


def _nonascii(digits: str, table: str) -> str:
    return "".join(table[int(d)] if d.isascii() and d.isdigit() else d for d in digits)


def _with_headers(msg: KafkaMessage, *extra: tuple[str, bytes]) -> KafkaMessage:
    return KafkaMessage(msg.key, msg.value, [*msg.headers, *extra])


def _record_id(msg: KafkaMessage, rid: str) -> KafkaMessage:
    """``record_id`` and ``ce_subject`` both set to ``rid`` (so only the id's format fails)."""
    return _header(_mutate_value(msg, record_id=rid), "ce_subject", rid.encode())


def _header_suffix(msg: KafkaMessage, name: str, suffix: bytes) -> KafkaMessage:
    value = dict(msg.headers)[name]
    return _header(msg, name, value + suffix)


def rfc8785_float_event(f: EventFactory) -> KafkaMessage:
    """A valid event whose value holds ``60.0`` (a float with no fraction) but whose signature
    is over the RFC 8785 bytes, where it is ``60``: accepted (docs/contract.md §5)."""
    change = f.change("encounter")
    assert change.data is not None
    data = {**change.data, "vitals": {**change.data["vitals"], "weight_kg": 60.0}}
    c = f.again(change, data=data, when=change.time)
    msg = f.message(c)
    assert b'"weight_kg":60.0' in msg.value
    return msg


def _keys_and_numbers(f: EventFactory, add: Any) -> None:
    enc = f.message(f.change("encounter"))
    add(
        "forged_dev_key",  # a development-derived key while a real registry is configured
        Reason.TAMPERED,
        f.message(f.change("encounter", signer=FORGED)),
    )
    add(
        "revoked_key_backdated",  # ce_time before revoked_at; the broker received it after
        Reason.SIGNER_KEY_REVOKED,
        f.message(f.change("encounter", signer=REVOKED, when=f.revoked_at - timedelta(days=9))),
    )
    add(
        "rotated_out_key_backdated",
        Reason.SIGNER_KEY_REVOKED,
        f.message(
            f.change(
                "encounter",
                signer=ROTATED,
                key_id=ROTATED_OLD,
                when=f.revoked_at - timedelta(days=9),
            )
        ),
        f.message(f.change("encounter", signer=ROTATED, key_id=ROTATED_NEW)),  # the new key
    )
    add(
        "unknown_key_id",
        Reason.UNKNOWN_KEY_ID,
        f.message(f.change("encounter", signer=ROTATED, key_id="k1999")),
    )
    add("key_id_newline", Reason.BAD_SIGNER, _mutate_value(enc, key_id=ROTATED_NEW + "\n"))
    add("version_2_63", Reason.BAD_VERSION, _mutate_value(enc, record_version=2**63))
    add("version_2_64_minus_1", Reason.BAD_VERSION, _mutate_value(enc, record_version=2**64 - 1))
    add("version_minus_2_63", Reason.BAD_VERSION, _mutate_value(enc, record_version=-(2**63)))
    add("seq_2_63", Reason.BAD_SEQ, _mutate_value(enc, station_seq=2**63))
    imm = f.message(f.change("immunization"))
    add("payload_int_2_63", Reason.OUT_OF_RANGE, _mutate_data(imm, dose_number=2**63))
    big_temp = orjson.loads(enc.value)
    big_temp["data"]["vitals"]["temperature_c"] = 1e308
    add(
        "float_1e308",
        Reason.OUT_OF_RANGE,
        KafkaMessage(enc.key, orjson.dumps(big_temp), enc.headers),
    )
    add(
        "nan_literal",
        Reason.NOT_JSON,
        KafkaMessage(enc.key, enc.value.replace(b"36.8", b"NaN"), enc.headers),
    )
    add(
        "deep_nesting",
        Reason.NOT_JSON,
        KafkaMessage(enc.key, b"[" * 5000 + b"]" * 5000, enc.headers),
    )
    first = f.change("encounter")
    jump = f.again(first, version=1_000_001)
    add("version_jump", Reason.VERSION_JUMP, f.message(jump), f.message(first))
    add(
        "new_record_at_version_2_40",
        Reason.VERSION_JUMP,
        f.message(f.change("encounter", version=2**40)),
    )


def _headers(f: EventFactory, add: Any) -> None:
    enc = f.message(f.change("encounter"))
    add("header_1mb", Reason.HEADERS_TOO_LARGE, _with_headers(enc, ("x-pad", b"x" * 1_000_000)))
    add(
        "ce_subject_64kb",
        Reason.HEADERS_TOO_LARGE,
        _header(enc, "ce_subject", b"0" * 65536),
    )
    add(
        "hundred_headers",
        Reason.HEADERS_TOO_LARGE,
        _with_headers(enc, *[("x", b"1")] * 100),
    )
    add("unknown_ce_header", Reason.UNKNOWN_HEADER, _with_headers(enc, ("ce_comment", b"hi")))
    add(
        "traceparent_header",
        Reason.UNKNOWN_HEADER,
        _with_headers(enc, ("traceparent", b"00-a-b-01")),
    )
    add(
        "station_tuyen_reason",
        Reason.RESERVED_HEADER,
        _with_headers(enc, ("tuyen_reason", b"tampered")),
    )
    add(
        "station_tuyen_tier",
        Reason.RESERVED_HEADER,
        _with_headers(enc, ("tuyen_tier", b"national")),
    )
    add(
        "repeated_ce_id",
        Reason.BAD_HEADER,
        _with_headers(enc, ("ce_id", dict(enc.headers)["ce_id"])),
    )


def _whole_strings(f: EventFactory, add: Any) -> None:
    enc = f.message(f.change("encounter"))
    person = f.message(f.change("person"))
    hid = dict(person.headers)["ce_subject"].decode()
    staff = f.message(f.change("staff_snapshot", station="00367"))
    period = orjson.loads(staff.value)["data"]["period"]
    rid = orjson.loads(enc.value)["record_id"]
    add(
        "person_id_newline",
        Reason.BAD_HEALTH_ID,
        _mutate_data(_record_id(person, hid + "\n"), health_id=hid + "\n"),
    )
    add("local_id_newline", Reason.BAD_RECORD_ID, _record_id(enc, rid + "\n"))
    add("local_id_cr", Reason.BAD_RECORD_ID, _record_id(enc, rid + "\r"))
    add("local_id_nul", Reason.BAD_RECORD_ID, _record_id(enc, rid + "\x00"))
    add("health_id_nul", Reason.BAD_HEALTH_ID, _mutate_data(enc, health_id=hid[:9] + "\x00"))
    add(
        "health_id_arabic_digits",
        Reason.BAD_HEALTH_ID,
        _mutate_data(enc, health_id=_nonascii(hid, ARABIC_DIGITS)),
    )
    add("icd10_newline", Reason.BAD_ICD10, _mutate_data(enc, diagnoses=["I10\n"]))
    add("period_newline", Reason.BAD_FORMAT, _mutate_data(staff, period=period + "\n"))
    add("snapshot_id_newline", Reason.BAD_RECORD_ID, _record_id(staff, f"00367:staff:{period}\n"))
    add(
        "date_newline",
        Reason.BAD_DATE,
        _mutate_data(enc, encounter_date=orjson.loads(enc.value)["data"]["encounter_date"] + "\n"),
    )
    add(
        "phone_fullwidth_digits",
        Reason.BAD_PHONE,
        _mutate_data(person, phone=_nonascii("0912345678", FULLWIDTH_DIGITS)),
    )
    add(
        "citizen_id_arabic_digits",
        Reason.BAD_CITIZEN_ID,
        _mutate_data(person, citizen_id=_nonascii("001090012345", ARABIC_DIGITS)),
    )
    add(
        "commune_fullwidth_digits",
        Reason.BAD_FORMAT,
        _mutate_data(person, residence_commune=_nonascii("00004", FULLWIDTH_DIGITS)),
    )
    add(
        "vaccine_newline",
        Reason.UNKNOWN_VACCINE,
        _mutate_data(f.message(f.change("immunization")), vaccine="BCG\n"),
    )
    add("signer_newline", Reason.BAD_SIGNER, _mutate_value(enc, signer="hw-00004-1\n"))
    add("source_newline", Reason.BAD_SOURCE, _header_suffix(enc, "ce_source", b"\n"))
    add("time_newline", Reason.BAD_TIME, _header_suffix(enc, "ce_time", b"\n"))
    add("event_id_newline", Reason.BAD_EVENT_ID, _header_suffix(enc, "ce_id", b"\n"))
    add("dataschema_newline", Reason.BAD_DATASCHEMA, _header_suffix(enc, "ce_dataschema", b"\n"))
    add("key_newline", Reason.KEY_MISMATCH, KafkaMessage(enc.key + b"\n", enc.value, enc.headers))
    add("null_key", Reason.KEY_MISMATCH, KafkaMessage(None, enc.value, enc.headers))  # type: ignore[arg-type]
    big = orjson.loads(enc.value)
    big["data"]["padding"] = "x" * 900_000
    add("value_900kb", Reason.OVERSIZED, KafkaMessage(enc.key, orjson.dumps(big), enc.headers))


def _ownership(f: EventFactory, add: Any) -> None:
    person, transfer = f.person, f.transfer
    p = person("00004")
    add("other_station_changes_person", Reason.NOT_RECORD_HOLDER,
        f.message(person("00367", p.record_id, 2)), f.message(p))  # fmt: skip
    p = person("00004")
    add("other_station_deletes_person", Reason.NOT_RECORD_HOLDER,
        f.message(person("00367", p.record_id, 2, "delete")), f.message(p))  # fmt: skip
    e = f.change("encounter", station="00004")
    theirs = f.change("encounter", station="00367", health_id=e.record_id.split(":")[0],
                      record_id=e.record_id, version=2)  # fmt: skip
    add("other_station_overwrites_encounter", Reason.NOT_RECORD_HOLDER,
        f.message(theirs), f.message(e))  # fmt: skip
    add("transfer_of_unknown_person", Reason.NOT_RECORD_HOLDER,
        f.message(transfer("00004", f.health_id(), "00367", 1)))  # fmt: skip
    # (name, reason, sending station, receiving station, person_record_version) of a person
    # registered by 00004 at version 1
    for name, reason, sender, to, released in [
        ("transfer_by_non_holder", Reason.NOT_RECORD_HOLDER, "00367", "20977", 1),
        ("transfer_at_wrong_version", Reason.INCONSISTENT, "00004", "00367", 7),
        ("transfer_to_unknown_station", Reason.UNKNOWN_STATION, "00004", "99999", 1),
    ]:
        p = person("00004")
        add(name, reason, f.message(transfer(sender, p.record_id, to, released)), f.message(p))
    add("transfer_to_itself", Reason.INCONSISTENT, _resigned_transfer(f, p.record_id))
    t = transfer("00004", p.record_id, "00367", 1)
    add("transfer_corrected", Reason.BAD_VERSION, _mutate_value(f.message(t), record_version=2))
    add("transfer_deleted", Reason.BAD_OP, _transfer_delete(f.message(t)))
    p = person("00004")
    moved = transfer("00004", p.record_id, "00367", 1)
    new_holder = person("00367", p.record_id, 2)
    add("old_holder_after_transfer", Reason.NOT_RECORD_HOLDER,
        f.message(person("00004", p.record_id, 3)),
        f.message(p), f.message(moved), f.message(new_holder))  # fmt: skip
    case = f.message(f.change("encounter"))
    add("wrong_partition", Reason.WRONG_PARTITION, case, wrong_partition=True)


def _resigned_transfer(f: EventFactory, hid: str) -> KafkaMessage:
    """A transfer to its own station (the rule is checked before the signature)."""
    day = (f.now - timedelta(hours=1)).date().isoformat()
    data = {
        "health_id": hid,
        "to_station": "00367",
        "transfer_date": day,
        "person_record_version": 1,
    }
    msg = f.message(f.change("person_transfer", station="00004", health_id=hid, data=data))
    return _mutate_data(msg, to_station="00004")


def _transfer_delete(msg: KafkaMessage) -> KafkaMessage:
    out = _mutate_value(msg, op="delete", data=None)
    return _header(out, "ce_type", b"vn.health.person_transfer.delete")


def hostile_inputs(f: EventFactory) -> list[Case]:
    """The hostile corpus (see the module docstring)."""
    cases: list[Case] = []

    def add(
        name: str,
        reason: Reason,
        msg: KafkaMessage,
        *setup: KafkaMessage,
        wrong_partition: bool = False,
    ) -> None:
        cases.append(Case(name, reason, msg, tuple(setup), wrong_partition))

    _keys_and_numbers(f, add)
    _headers(f, add)
    _whole_strings(f, add)
    _ownership(f, add)
    return cases
