"""The signed bytes are RFC 8785: the RFC's own test vectors, the fast path equal to the
``rfc8785`` reference on any JSON value (Hypothesis), and ``60.0`` signed as ``60``."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DevKeyRegistry, canonical_bytes, decode, encode, sign, verify
from schemas.canonical import MAX_SAFE_INTEGER, canonical_json, es6_number
from schemas.examples import example_change

# RFC 8785 Appendix B: IEEE 754 doubles (hex) and their JSON form
NUMBER_VECTORS = {
    "0000000000000000": "0",
    "8000000000000000": "0",
    "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324",
    "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308",
    "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992",
    "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22",
    "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23",
    "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000",
    "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7",
    "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332",
    "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333",
    "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343",
    "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}


@pytest.mark.parametrize(("bits", "text"), NUMBER_VECTORS.items())
def test_rfc8785_number_vectors(bits: str, text: str) -> None:
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert es6_number(x) == text
    assert canonical_json([x]) == f"[{text}]".encode()


def test_rfc8785_section_3_2_2_example() -> None:
    """The input and output of RFC 8785 §3.2.2 (numbers, escapes, literals)."""
    source = (
        b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(orjson.loads(source)) == expected


def test_rfc8785_section_3_2_3_sorting() -> None:
    """Keys sorted by UTF-16 code units (RFC 8785 §3.2.3): the non-ASCII keys take the
    reference implementation's path."""
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(orjson.loads(canonical_json(obj)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fast_path_equals_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_formats_like_the_reference(x: float) -> None:
    assert es6_number(x).encode() == rfc8785.dumps(x)


def test_integers_beyond_2_53_have_no_canonical_form() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_json({"n": MAX_SAFE_INTEGER + 1})
    with pytest.raises(rfc8785.FloatDomainError):
        canonical_json([float("inf")])


def test_a_float_without_fraction_is_signed_as_an_integer() -> None:
    """``60.0`` on the wire verifies against a signature over ``60`` (RFC 8785 bytes), and
    the same event written ``60`` has the same signed bytes."""
    registry = DevKeyRegistry(b"canonical")
    change = example_change("encounter")
    assert change.data is not None
    as_float = change.model_copy(
        update={"data": {**change.data, "vitals": {**change.data["vitals"], "weight_kg": 60.0}}}
    )
    as_int = change.model_copy(
        update={"data": {**change.data, "vitals": {**change.data["vitals"], "weight_kg": 60}}}
    )
    assert canonical_bytes(as_float) == canonical_bytes(as_int)
    assert b'"weight_kg":60}' in canonical_bytes(as_float)
    msg = encode(sign(as_float, registry.signing_key(change.signer)))
    assert b'"weight_kg":60.0' in msg.value
    verify(decode(msg.value, msg.headers, now=change.time), registry)
    rewritten = msg.value.replace(b'"weight_kg":60.0', b'"weight_kg":60')
    verify(decode(rewritten, msg.headers, now=change.time), registry)
