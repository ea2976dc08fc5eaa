"""The pseudonymiser's keyed HMAC state, copied per digest, is HMAC-SHA256 (issue 17: five
digests per event on the national tier, each no longer keying anew)."""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from streams.pseudonymise import Pseudonymiser


@given(st.binary(min_size=1, max_size=80), st.text(max_size=40), st.text(max_size=20))
def test_a_pseudonymisers_digest_is_hmac_sha256(key: bytes, value: str, domain: str) -> None:
    """The keyed HMAC state copied per digest gives HMAC-SHA256(key, ``<domain>:<value>``)."""
    p = Pseudonymiser(key)
    expected = hmac.digest(key, f"{domain}:{value}".encode(), "sha256")
    assert p.digest(value, domain) == expected
    assert p.digest(value, domain) == expected  # the keyed state is not consumed
    assert p.pseudonym(value, domain) == "p" + expected[:16].hex()


@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.sampled_from(["a", "b"]))))
def test_the_last_pseudonym_remembered_is_never_anothers(calls: list[tuple[str, str]]) -> None:
    """Any sequence of (value, domain): each answer is that pair's HMAC, whatever came before."""
    p = Pseudonymiser(b"key")
    for value, domain in calls:
        expected = hmac.digest(b"key", f"{domain}:{value}".encode(), "sha256")[:16].hex()
        assert p.pseudonym(value, domain) == "p" + expected
