"""The national pseudonym key: its encoding and the checks that refuse a weak one. Pure.

The key is **base64 (standard or URL-safe alphabet, padding optional) of at least 32 random
bytes**; the decoded bytes are the HMAC-SHA256 key. Generate one with::

    openssl rand -base64 32
    python -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"

Refused (outside development mode, the development key too):

- text that is not base64, or hexadecimal (say ``openssl rand -hex`` was used: use base64);
- fewer than 32 bytes once decoded;
- the development key and the example values the project ever published;
- low entropy: few distinct bytes (one repeated character decodes to one byte value), a
  repeating block, or only printable ASCII (a passphrase base64-encoded: 32 random bytes are
  all printable once in ~10^14).

Changing the key changes every national pseudonym: keep it for the life of the national store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Final

__all__ = ["DEV_PSEUDONYM_KEY", "MIN_KEY_BYTES", "WeakPseudonymKey", "decode_pseudonym_key"]

MIN_KEY_BYTES: Final = 32

#: The development key: base64 of SHA-256 of a published phrase. Anyone can recompute it, so
#: it is accepted only in development mode.
DEV_PSEUDONYM_KEY: Final = base64.b64encode(
    hashlib.sha256(b"tuyen-development-only-pseudonym-key").digest()
).decode()

#: Values published in this project's files at some point (examples, the old development key):
#: refused whatever their form.
_PUBLISHED: Final = frozenset(
    {
        DEV_PSEUDONYM_KEY,
        "tuyen-development-only-pseudonym-key",
        "replace-me-with-a-long-random-secret",
    }
)

_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")


class WeakPseudonymKey(ValueError):
    """The pseudonym key is malformed or weak; the message says why (never the key)."""


def decode_pseudonym_key(text: str, *, allow_development: bool = False) -> bytes:
    """The HMAC key encoded in ``text``; :class:`WeakPseudonymKey` when it is malformed,
    short, published or of low entropy. ``allow_development`` admits the development key."""
    text = text.strip()
    if allow_development and text == DEV_PSEUDONYM_KEY:
        return base64.b64decode(text)
    if text in _PUBLISHED:
        raise WeakPseudonymKey(
            "it is a published value (the development key or an example): generate a key "
            "with `openssl rand -base64 32`"
        )
    if len(text) >= 2 * MIN_KEY_BYTES and _HEX.fullmatch(text):
        raise WeakPseudonymKey("it looks hexadecimal; the key is base64: `openssl rand -base64 32`")
    if not _BASE64.fullmatch(text):
        raise WeakPseudonymKey("it is not base64: generate a key with `openssl rand -base64 32`")
    standard = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WeakPseudonymKey("it is not valid base64") from None
    _check_strength(key)
    return key


def _check_strength(key: bytes) -> None:
    n = len(key)
    if n < MIN_KEY_BYTES:
        raise WeakPseudonymKey(f"it decodes to {n} bytes; at least {MIN_KEY_BYTES} are needed")
    for period in range(1, n // 2 + 1):
        if key[period:] == key[:-period]:
            raise WeakPseudonymKey(f"it repeats every {period} bytes: not random")
    distinct = len(set(key))
    if distinct < min(n, 64) // 2:
        raise WeakPseudonymKey(
            f"it has only {distinct} distinct byte values in {n} bytes: not random"
        )
    if all(0x20 <= b < 0x7F for b in key):
        raise WeakPseudonymKey(
            "it decodes to printable text (an encoded passphrase?), not random bytes"
        )
