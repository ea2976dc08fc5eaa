"""Every format check matches the whole string with ASCII classes: a trailing ``\\n`` or
``\\r``, a NUL, or non-ASCII digits (which Python's ``\\d`` and ``str.isdigit`` accept) in any
id, code, period or date field is rejected with that field's reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from schemas import ContractViolation, KafkaMessage, Reason, decode, encode
from schemas.examples import example_change

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
SPOILERS: dict[str, Callable[[str], str]] = {
    "newline": lambda s: s + "\n",
    "carriage_return": lambda s: s + "\r",
    "nul": lambda s: s + "\x00",
    "arabic_digits": lambda s: s.translate(ARABIC),
}


def _message(record_type: str) -> KafkaMessage:
    return encode(example_change(record_type))


def _data(path: str) -> Callable[[KafkaMessage, Callable[[str], str]], KafkaMessage]:
    """Spoil the payload string at ``path`` (dots; ints index lists)."""

    def apply(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
        obj = orjson.loads(msg.value)
        node: Any = obj["data"]
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
        node[last] = spoil(node[last])
        return KafkaMessage(msg.key, orjson.dumps(obj), msg.headers)

    return apply


def _header(name: str) -> Callable[[KafkaMessage, Callable[[str], str]], KafkaMessage]:
    def apply(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
        headers = [(k, spoil(v.decode()).encode() if k == name else v) for k, v in msg.headers]
        return KafkaMessage(msg.key, msg.value, headers)

    return apply


def _value(name: str) -> Callable[[KafkaMessage, Callable[[str], str]], KafkaMessage]:
    def apply(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
        obj = orjson.loads(msg.value)
        obj[name] = spoil(obj.get(name) or "k2026")
        return KafkaMessage(msg.key, orjson.dumps(obj), msg.headers)

    return apply


def _record_id(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
    """record_id and ce_subject alike (so the id's own format rule decides)."""
    obj = orjson.loads(msg.value)
    obj["record_id"] = spoil(obj["record_id"])
    headers = [(k, obj["record_id"].encode() if k == "ce_subject" else v) for k, v in msg.headers]
    return KafkaMessage(msg.key, orjson.dumps(obj), headers)


def _record_id_start(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
    """The health id part of a person-centred record id."""
    return _record_id(msg, lambda rid: spoil(rid.split(":")[0]) + ":" + rid.split(":")[1])


def _key(msg: KafkaMessage, spoil: Callable[[str], str]) -> KafkaMessage:
    return KafkaMessage(spoil(msg.key.decode()).encode(), msg.value, msg.headers)


# (record type, what to spoil, the reason)
FIELDS: dict[str, tuple[str, Callable[..., KafkaMessage], Reason]] = {
    "ce_id": ("encounter", _header("ce_id"), Reason.BAD_EVENT_ID),
    "ce_source": ("encounter", _header("ce_source"), Reason.BAD_SOURCE),
    "ce_time": ("encounter", _header("ce_time"), Reason.BAD_TIME),
    "ce_type": ("encounter", _header("ce_type"), Reason.TYPE_MISMATCH),
    "ce_dataschema": ("encounter", _header("ce_dataschema"), Reason.BAD_DATASCHEMA),
    "ce_subject": ("encounter", _header("ce_subject"), Reason.SUBJECT_MISMATCH),
    "ce_specversion": ("encounter", _header("ce_specversion"), Reason.BAD_HEADER),
    "content-type": ("encounter", _header("content-type"), Reason.BAD_CONTENT_TYPE),
    "signer": ("encounter", _value("signer"), Reason.BAD_SIGNER),
    "key_id": ("encounter", _value("key_id"), Reason.BAD_SIGNER),
    "person record_id": ("person", _record_id, Reason.BAD_HEALTH_ID),
    "encounter record_id": ("encounter", _record_id, Reason.BAD_RECORD_ID),
    "encounter record_id start": ("encounter", _record_id_start, Reason.BAD_HEALTH_ID),
    "snapshot record_id": ("bed_snapshot", _record_id, Reason.BAD_RECORD_ID),
    "kafka key": ("encounter", _key, Reason.KEY_MISMATCH),
    "health_id": ("encounter", _data("health_id"), Reason.BAD_HEALTH_ID),
    "mother_health_id": ("birth", _data("mother_health_id"), Reason.BAD_HEALTH_ID),
    "child_health_id": ("birth", _data("child_health_id"), Reason.BAD_HEALTH_ID),
    "citizen_id": ("person", _data("citizen_id"), Reason.BAD_CITIZEN_ID),
    "phone": ("person", _data("phone"), Reason.BAD_PHONE),
    "residence_commune": ("person", _data("residence_commune"), Reason.BAD_FORMAT),
    "ethnicity": ("person", _data("ethnicity"), Reason.UNKNOWN_CODE),
    "birth_date": ("person", _data("birth_date"), Reason.BAD_DATE),
    "diagnoses": ("encounter", _data("diagnoses.0"), Reason.BAD_ICD10),
    "encounter_date": ("encounter", _data("encounter_date"), Reason.BAD_DATE),
    "cause_icd10": ("death", _data("cause_icd10"), Reason.BAD_ICD10),
    "vaccine": ("immunization", _data("vaccine"), Reason.UNKNOWN_VACCINE),
    "disease": ("disease_case", _data("disease"), Reason.UNKNOWN_CODE),
    "medicine": ("stock_snapshot", _data("items.0.medicine"), Reason.UNKNOWN_CODE),
    "equipment": ("equipment_snapshot", _data("items.0.item"), Reason.UNKNOWN_CODE),
    "period": ("staff_snapshot", _data("period"), Reason.BAD_FORMAT),
    "as_of": ("staff_snapshot", _data("as_of"), Reason.BAD_DATE),
    "to_station": ("person_transfer", _data("to_station"), Reason.BAD_FORMAT),
    "transfer_date": ("person_transfer", _data("transfer_date"), Reason.BAD_DATE),
}


@pytest.mark.parametrize("spoiler", SPOILERS, ids=str)
@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_spoiled_field_is_rejected_with_its_reason(field: str, spoiler: str) -> None:
    record_type, spoil_field, reason = FIELDS[field]
    msg = _message(record_type)
    spoiled = spoil_field(msg, SPOILERS[spoiler])
    if spoiled == msg:  # no digit to replace (a code of letters)
        return
    change = example_change(record_type)
    with pytest.raises(ContractViolation) as info:
        decode(spoiled.value, spoiled.headers, key=spoiled.key, now=change.time)
    assert info.value.reason is reason, info.value.message


def test_the_unspoiled_messages_are_valid() -> None:
    for record_type in {rt for rt, _f, _r in FIELDS.values()}:
        msg = _message(record_type)
        decode(msg.value, msg.headers, key=msg.key, now=example_change(record_type).time)
