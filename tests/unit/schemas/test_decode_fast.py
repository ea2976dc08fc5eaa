"""The decode path's shortcuts give what the generic ways give (issue 17: stage 1's cost)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas import ContractViolation, decode, encode
from schemas.envelope import RecordChange, check_event_id
from schemas.examples import example_change
from schemas.registry import RecordType
from schemas.signing import signed_object
from schemas.wire import attributes, value_dict


def _uuid7_by_the_library(text: str) -> bool:
    """What ``check_event_id`` accepted before its regex: ``uuid.UUID`` says version 7 and
    prints it back the same."""
    try:
        u = uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return u.version == 7 and str(u) == text


def _accepted(text: str) -> bool:
    try:
        check_event_id(text)
    except ContractViolation:
        return False
    return True


_HEX = "0123456789abcdefABCDEF-{}:urn x\n"


@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.integers(0, 2**128 - 1).map(lambda i: str(uuid.UUID(int=i))),
        # a UUIDv7 with one character changed
        st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 35), st.sampled_from(_HEX)).map(
            lambda t: _mutate(_uuid7(t[0]), t[1], t[2])
        ),
        st.text(max_size=40),
    )
)
def test_the_event_id_check_is_the_uuid_librarys(text: str) -> None:
    assert _accepted(text) == _uuid7_by_the_library(text)


def _uuid7(bits: int) -> str:
    """A UUID of version 7 and the RFC 9562 variant from 128 random bits."""
    bits = bits & ~(0xF << 76) | (7 << 76)
    bits = bits & ~(0xC000 << 48) | (0x8000 << 48)
    return str(uuid.UUID(int=bits))


def _mutate(text: str, at: int, char: str) -> str:
    return text[:at] + char + text[at + 1 :]


def test_decode_builds_the_change_model_construct_would() -> None:
    assert not RecordChange.__pydantic_post_init__ and not RecordChange.__pydantic_root_model__
    assert all(
        f.alias is None and f.validation_alias is None for f in RecordChange.model_fields.values()
    )
    for rt in RecordType:
        change = example_change(rt.value)
        m = encode(change)
        got = decode(m.value, m.headers, key=m.key)
        expected = RecordChange.model_construct(**dict(got.__dict__))
        assert got == expected and got.__dict__ == expected.__dict__
        assert list(got.__dict__) == list(RecordChange.model_fields)
        assert got.model_fields_set == expected.model_fields_set
        assert got.model_dump() == change.model_dump()
        assert got.model_copy(update={"signature": "x"}).signature == "x"


def test_the_signed_object_is_the_events_attributes_and_value() -> None:
    """``signed_object`` built directly = the attributes without ``specversion`` and the value
    without ``signature`` (what docs/contract.md says is signed)."""
    for rt in RecordType:
        for key_id in (None, "k1"):
            change = example_change(rt.value)
            if key_id:
                change = change.model_copy(update={"key_id": key_id})
            expected = {**attributes(change), **value_dict(change)}
            del expected["specversion"], expected["signature"]
            assert signed_object(change) == expected
