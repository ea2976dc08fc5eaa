"""Deliberately bad events, one function per :class:`BadKind`. Each starts from a fresh,
valid change of a record that never becomes valid, so the good records stay untouched."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from producers.simulator.model import BadKind
from producers.simulator.signing import DevSigner
from schemas import KafkaMessage, RecordChange, encode

UNKNOWN_STATION = "99999"


def base_data(kind: BadKind, health_id: str, day: str) -> tuple[str, dict[str, Any]]:
    """(record type, valid data) the corruption of ``kind`` starts from."""
    if kind is BadKind.UNKNOWN_VACCINE:
        return "immunization", {"health_id": health_id, "vaccine": "BCG", "dose_number": 1,
                                "date": day}  # fmt: skip
    if kind is BadKind.BAD_CITIZEN_ID:
        return "person", {
            "health_id": health_id,
            "full_name": "Nguyễn Văn Sai",
            "sex": "male",
            "birth_date": "1980-05-01",
            "citizen_id": "001180123456",  # encodes a woman born 1980
            "ethnicity": "01",
            "residence_commune": "00001",
        }
    return "encounter", {"health_id": health_id, "encounter_date": day, "diagnoses": ["J06"]}


def corrupt_data(kind: BadKind, data: dict[str, Any]) -> dict[str, Any]:
    """Payload-level corruptions (signed afterwards, so only the payload is wrong)."""
    if kind is BadKind.BAD_ICD10:
        return {**data, "diagnoses": ["Q99.9"]}
    if kind is BadKind.UNKNOWN_VACCINE:
        return {**data, "vaccine": "XYZ_VAX"}
    if kind is BadKind.EXTRA_FIELD:
        return {**data, "nickname": "Tí"}
    return data


def finish(
    kind: BadKind, change: RecordChange, signer: DevSigner, rng: random.Random, other_station: str
) -> tuple[RecordChange | None, KafkaMessage]:
    """Sign and encode ``change`` with the corruption of ``kind``."""
    if kind is BadKind.UNKNOWN_SIGNER:
        change = change.model_copy(update={"signer": f"hw-{change.station}-99"})
    elif kind is BadKind.FOREIGN_SIGNER:
        change = change.model_copy(update={"signer": f"hw-{other_station}-1"})
    elif kind is BadKind.FUTURE_TIME:
        change = change.model_copy(update={"time": change.time + timedelta(days=3650)})
    signed = signer.sign_many([change])[0]
    if kind is BadKind.TAMPERED:
        assert signed.data is not None
        signed = signed.model_copy(update={"data": {**signed.data, "diagnoses": ["Z00"]}})
    elif kind is BadKind.BAD_SIGNATURE:
        signed = signed.model_copy(update={"signature": "bm90LWEtc2lnbmF0dXJl"})
    msg = encode(signed)
    if kind is BadKind.NOT_JSON:
        return None, KafkaMessage(msg.key, b"{not json: " + msg.value[:40], msg.headers)
    if kind is BadKind.MISSING_HEADER:
        headers = [(k, v) for k, v in msg.headers if k != "ce_time"]
        return signed, KafkaMessage(msg.key, msg.value, headers)
    return signed, msg
