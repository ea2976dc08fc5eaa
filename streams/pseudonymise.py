"""Keyed pseudonyms for the national tier. Pure.

``Pseudonymiser(key).pseudonym(value, domain)`` is ``p`` + 32 hex characters of
HMAC-SHA256(key, ``<domain>:<value>``): the same health id gets the same pseudonym in every
record (domain ``health_id``), so national analysts can still count distinct people and link
a person's records; other domains (record ids, event ids, ranks) never collide with it.
What the national tier carries, and how each field is transformed, is the allow-list of
``schemas.national`` applied by ``streams.national``.

The key is a ``SecretStr`` held privately; ``repr`` never shows it.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

__all__ = ["Pseudonymiser"]


class Pseudonymiser:
    """Keyed pseudonyms (HMAC-SHA256 in named domains)."""

    __slots__ = ("_hmac", "_key", "_last")

    def __init__(self, key: SecretStr | str | bytes) -> None:
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        self._key = raw.encode() if isinstance(raw, str) else bytes(raw)
        if not self._key:
            raise ValueError("the pseudonym key must not be empty")
        # keyed once: each digest copies it (about half the cost of hmac.digest, which keys
        # anew; five digests per event on the national tier)
        self._hmac = hmac.new(self._key, digestmod="sha256")
        #: the last pseudonym made, as (domain, value, pseudonym): a person-centred record
        #: asks for its person's twice (the record key, then the payload's health id)
        self._last: tuple[str | None, str | None, str] = (None, None, "")

    def __repr__(self) -> str:
        return "Pseudonymiser(key=**********)"

    def digest(self, value: str, domain: str) -> bytes:
        """HMAC-SHA256(key, ``<domain>:<value>``)."""
        h = self._hmac.copy()
        h.update(f"{domain}:{value}".encode())
        return h.digest()

    def pseudonym(self, value: str, domain: str = "health_id") -> str:
        """``p`` + 32 hex characters of HMAC-SHA256(key, domain:value)."""
        last = self._last
        if last[1] == value and last[0] == domain:
            return last[2]
        made = "p" + self.digest(value, domain)[:16].hex()
        self._last = (domain, value, made)
        return made
