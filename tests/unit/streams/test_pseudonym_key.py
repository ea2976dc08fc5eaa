"""The pseudonym key: base64 of at least 32 random bytes; the development key, published
examples, short keys and low-entropy values are refused."""

from __future__ import annotations

import base64
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.pseudonym_key import (
    DEV_PSEUDONYM_KEY,
    WeakPseudonymKey,
    decode_pseudonym_key,
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_random_keys_are_accepted_in_every_spelling() -> None:
    for _ in range(300):
        raw = os.urandom(32)
        assert decode_pseudonym_key(b64(raw)) == raw
        assert decode_pseudonym_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
        assert decode_pseudonym_key(b64(raw) + "\n") == raw  # as a secret file holds it
    longer = os.urandom(64)
    assert decode_pseudonym_key(b64(longer)) == longer


_WEAK = [
    (DEV_PSEUDONYM_KEY, "published value"),
    ("tuyen-development-only-pseudonym-key", "published value"),
    ("replace-me-with-a-long-random-secret", "published value"),
    (b64(os.urandom(31)), "31 bytes"),
    (os.urandom(32).hex(), "hexadecimal"),
    ("A" * 44, "repeats every 1 bytes"),  # one repeated character
    ("z" * 64, "repeats every 3 bytes"),  # 4 base64 characters are 3 bytes
    (b64(bytes(random.Random(7).choices(b"\x00\x01\x02", k=48))), "distinct"),
    (b64(os.urandom(8) * 4), "repeats every 8 bytes"),
    (
        b64(b"The quick brown fox jumps over the lazy dog; PACK MY BOX WITH 5 JUGS!"),
        "printable",
    ),
    ("not base64 at all!", "not base64"),
    ("", "not base64"),
    (b64(os.urandom(32))[:-2] + "*=", "not base64"),
]


# the ids name the case, not its random key: pytest-xdist's workers must collect the same ids
@pytest.mark.parametrize(
    ("text", "why"), _WEAK, ids=[f"{i}-{why}" for i, (_, why) in enumerate(_WEAK)]
)
def test_weak_or_malformed_keys_are_refused(text: str, why: str) -> None:
    with pytest.raises(WeakPseudonymKey, match=why):
        decode_pseudonym_key(text)


def test_the_development_key_only_in_development_mode() -> None:
    assert len(decode_pseudonym_key(DEV_PSEUDONYM_KEY, allow_development=True)) == 32
    with pytest.raises(WeakPseudonymKey):
        decode_pseudonym_key("A" * 44, allow_development=True)  # a weak key stays weak


@given(st.binary(max_size=80))
def test_whatever_is_accepted_is_32_bytes_of_varied_binary(raw: bytes) -> None:
    try:
        key = decode_pseudonym_key(b64(raw))
    except WeakPseudonymKey as exc:
        assert len(raw) < 4 or b64(raw) not in str(exc)  # the reason never repeats the key
        return
    assert key == raw and len(key) >= 32
    assert len(set(key)) >= 16 and not all(0x20 <= b < 0x7F for b in key)
