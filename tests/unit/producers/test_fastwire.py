"""The fast encoder (simulator, importers) writes exactly what ``schemas.sign`` and
``schemas.encode`` write: RFC 8785 signed bytes, the same value, key and headers, with and
without a ``key_id``; and the receiver's strict decoder (header allow-list) takes it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from producers.simulator.fastwire import Prepared
from producers.simulator.spec import Spec
from schemas import decode, dev_signing_key, encode, make_change, sign
from schemas.examples import example_data
from schemas.keys import DEV_KEY_SEED
from schemas.signing import canonical_bytes

EVENT_ID = "01946a8e-2f00-7c3a-9b1e-5d2f0a1b3c4d"
T = datetime(2026, 10, 18, 2, 30, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("key_id", [None, "2026-10"])
@pytest.mark.parametrize(
    ("record_type", "record_id"),
    [("medicine_dispensed", "0123456789:KB001-rx"), ("encounter", "0123456789:KB001")],
)
def test_prepared_equals_sign_and_encode(
    record_type: str, record_id: str, key_id: str | None
) -> None:
    data = example_data(record_type, health_id="0123456789")
    signer, key = "hw-00004-1", dev_signing_key(DEV_KEY_SEED, "hw-00004-1")
    spec = Spec(T, record_type, record_id, "upsert", 3, data, 1)
    p = Prepared("00004", spec, EVENT_ID, 42, signer=signer, key_id=key_id)
    change = make_change(
        station="00004", record_type=record_type, record_id=record_id, op="upsert",
        record_version=3, station_seq=42, signer=signer, data=data, time=T, event_id=EVENT_ID,
        now=T,
    )  # fmt: skip
    signed = sign(change, key, key_id=key_id)
    expected = encode(signed)
    assert canonical_bytes(signed) == p.canonical
    signature = base64.b64encode(key.sign(p.canonical).signature).decode()
    assert signature == signed.signature
    key_bytes, value, headers = p.message(signature)
    assert (key_bytes, value, headers) == (expected.key, expected.value, expected.headers)
    assert decode(value, headers, key=key_bytes) == signed
