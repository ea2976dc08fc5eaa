"""Deterministic event ids and content digests for importers.

An imported record's event id is a UUIDv7 made from the record's *time* (the visit time:
the 48-bit millisecond timestamp) and a SHA-256 over the source, the record type, the
record id and the digest of the content (the 74 random bits of the UUIDv7). Importing the
same visit again gives the same id, so even an outbox that forgot what it sent cannot make
the pipeline count a visit twice (the validator drops a repeated id); a corrected visit
(other content) gets a new id and a new version.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

__all__ = ["content_digest", "deterministic_event_id"]


def content_digest(data: Any) -> str:
    """SHA-256 (hex) of the compact, key-sorted JSON of a JSON-shaped after-image (the
    canonical form the signatures use for the contract's values, ``schemas.signing``)."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def deterministic_event_id(
    time: datetime, source: str, record_type: str, record_id: str, digest: str
) -> str:
    """A canonical UUIDv7: timestamp ``time`` (ms), random bits from SHA-256 of the rest."""
    h = int.from_bytes(
        hashlib.sha256(f"{source}|{record_type}|{record_id}|{digest}".encode()).digest()[:10]
    )
    ms = int(time.timestamp() * 1000) & ((1 << 48) - 1)
    rand_a = h >> 68 & 0xFFF  # 12 bits
    rand_b = h & ((1 << 62) - 1)  # 62 bits
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    x = f"{value:032x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
