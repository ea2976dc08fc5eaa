"""Routing: one validated record → the valid stream and the three tier streams. Pure.

District and province streams carry the record-level after-image (each store keeps the
subtree it owns: ``district_code`` / ``province_code`` say whose it is); the national
stream carries the :class:`~streams.pseudonymise.Pseudonymiser` copy only. Every output keeps
the raw message's ``ce_*`` headers and adds ``tuyen_tier``; the key is the record key
(pseudonymised on the national tier).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from schemas.tier import TierName
from schemas.topics import TIER_DISTRICT, TIER_NATIONAL, TIER_PROVINCE, VALID
from streams.pseudonymise import Pseudonymiser

__all__ = [
    "H_TIER",
    "TIER_TOPICS",
    "Routed",
    "encode_record",
    "route",
    "route_headers",
    "tier_headers",
]

H_TIER: Final = "tuyen_tier"
TIER_TOPICS: Final[dict[TierName, str]] = {
    "valid": VALID,
    "district": TIER_DISTRICT,
    "province": TIER_PROVINCE,
    "national": TIER_NATIONAL,
}


@dataclass(frozen=True, slots=True)
class Routed:
    """One output: which stream, the record key and the record."""

    tier: TierName
    key: str
    record: Mapping[str, Any]


_dumps = orjson.dumps


def encode_record(record: Mapping[str, Any]) -> bytes:
    """The Kafka value of a tier record (its fields, in :class:`~schemas.tier.TierRecord`
    order; ``load_tier_record`` reads it back; orjson formats datetimes as RFC 3339)."""
    return _dumps(record)


def route(record: Mapping[str, Any], pseudonymiser: Pseudonymiser) -> list[Routed]:
    """The four outputs of one validated record: valid, district, province, national."""
    national = pseudonymiser.national(record)
    key = record["record_key"]
    return [
        Routed("valid", key, record),
        Routed("district", key, record),
        Routed("province", key, record),
        Routed("national", national["record_key"], national),
    ]


def tier_headers(
    original: Sequence[tuple[str, bytes | None]], routed: Routed
) -> list[tuple[str, bytes]]:
    """The raw message's ``ce_*`` headers (and content-type) plus ``tuyen_tier``.

    On a pseudonymised record ``ce_subject`` (the record id, which holds the health id) is
    replaced by the pseudonymised record id.
    """
    out: list[tuple[str, bytes]] = []
    for name, value in original:
        if name == "ce_subject" and routed.record["pseudonymised"]:
            out.append((name, routed.record["record_id"].encode()))
        elif name.startswith("ce_") or name == "content-type":
            out.append((name, value or b""))
    out.append((H_TIER, routed.tier.encode()))
    return out


_TIER_HEADERS: Final = {tier: (H_TIER, tier.encode()) for tier in TIER_TOPICS}


def route_headers(
    original: Sequence[tuple[str, bytes | None]], national_record_id: str
) -> tuple[list[tuple[str, bytes]], ...]:
    """:func:`tier_headers` of the four outputs at once (valid, district, province, national):
    the same lists, computed with one pass over ``original``."""
    base: list[tuple[str, bytes]] = []
    subject = -1
    for name, value in original:
        if name.startswith("ce_") or name == "content-type":
            if name == "ce_subject":
                subject = len(base)
            base.append((name, value or b""))
    national = base.copy()
    if subject >= 0:
        national[subject] = ("ce_subject", national_record_id.encode())
    return (
        [*base, _TIER_HEADERS["valid"]],
        [*base, _TIER_HEADERS["district"]],
        [*base, _TIER_HEADERS["province"]],
        [*national, _TIER_HEADERS["national"]],
    )
