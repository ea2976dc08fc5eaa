"""Ed25519 signatures over canonical bytes; key registries."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    ContractViolation,
    DevKeyRegistry,
    Reason,
    SignerKey,
    StaticKeyRegistry,
    canonical_bytes,
    dev_signing_key,
    sign,
    verify,
)
from schemas.examples import example_change

REG = DevKeyRegistry(b"test-seed")


def signed(record_type: str = "birth") -> object:
    change = example_change(record_type)
    return sign(change, REG.signing_key(change.signer))


def test_canonical_bytes_are_sorted_compact_and_exclude_the_signature() -> None:
    change = example_change("immunization")
    raw = canonical_bytes(change)
    obj = orjson.loads(raw)
    assert "signature" not in obj
    assert list(obj) == sorted(obj)
    assert raw == orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    assert obj["time"] == "2025-01-15T12:00:00.000000Z"
    assert obj["source"] == "station/00004" and obj["dataschema"] == "immunization/v1"
    assert canonical_bytes(sign(change, REG.signing_key(change.signer))) == raw


def test_sign_then_verify() -> None:
    change = example_change("person")
    s = sign(change, REG.signing_key(change.signer))
    assert len(base64.b64decode(s.signature)) == 64
    verify(s, REG)


@given(st.sampled_from(["record_version", "station_seq"]), st.integers(2, 10**6))
def test_any_field_change_is_tampering(name: str, value: int) -> None:
    change = example_change("encounter")
    s = sign(change, REG.signing_key(change.signer))
    with pytest.raises(ContractViolation) as info:
        verify(s.model_copy(update={name: value}), REG)
    assert info.value.reason is Reason.TAMPERED


def test_data_and_attribute_tampering() -> None:
    change = example_change("encounter")
    s = sign(change, REG.signing_key(change.signer))
    data = {**(s.data or {}), "diagnoses": ["A09"]}
    for altered in (
        s.model_copy(update={"data": data}),
        s.model_copy(update={"time": datetime(2025, 1, 15, 12, 0, 1, tzinfo=UTC)}),
        s.model_copy(update={"id": "01900000-0000-7000-8000-000000000000"}),
    ):
        with pytest.raises(ContractViolation) as info:
            verify(altered, REG)
        assert info.value.reason is Reason.TAMPERED


def test_key_of_another_worker_of_the_same_station_is_tampering() -> None:
    change = example_change("encounter")
    s = sign(change, REG.signing_key("hw-00004-2"))  # signer field still says hw-00004-1
    with pytest.raises(ContractViolation) as info:
        verify(s, REG)
    assert info.value.reason is Reason.TAMPERED


def test_dev_registry_is_deterministic_and_bounded() -> None:
    other = DevKeyRegistry(b"test-seed")
    key = other.lookup("hw-12345-3")
    assert key is not None and key.station == "12345"
    assert key.public_key == bytes(dev_signing_key(b"test-seed", "hw-12345-3").verify_key)
    assert DevKeyRegistry(b"other-seed").lookup("hw-12345-3") != key
    assert other.lookup("hw-12345-9") is None  # beyond signers_per_station
    assert other.lookup("dr-12345-1") is None
    with pytest.raises(ContractViolation) as info:
        other.signing_key("nobody")
    assert info.value.reason is Reason.SIGNER_NOT_REGISTERED


def test_static_registry_json_round_trip_and_validity() -> None:
    pub = bytes(REG.signing_key("hw-00004-1").verify_key)
    reg = StaticKeyRegistry(
        [
            SignerKey(
                "hw-00004-1",
                "00004",
                pub,
                valid_from=datetime(2024, 1, 1, tzinfo=UTC),
                valid_to=datetime(2026, 1, 1, tzinfo=UTC),
            )
        ]
    )
    back = StaticKeyRegistry.from_json(reg.to_json())
    assert back.lookup("hw-00004-1") == reg.lookup("hw-00004-1")
    assert len(back) == 1
    verify(signed("person"), back, received=datetime(2025, 7, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(ContractViolation):
        StaticKeyRegistry.from_json(
            b'{"keys": [{"signer": "x", "station": "1", "public_key": "AA=="}]}'
        )
