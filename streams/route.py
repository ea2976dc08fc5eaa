"""Routing: one validated record → the valid stream and the three tier streams. Pure.

District and province streams carry the record-level after-image (each store keeps the
subtree it owns: ``district_code`` / ``province_code`` say whose it is); the national
stream carries the allow-listed copy only (``streams.national``). Every output carries the
CloudEvents headers rebuilt from the validated record (never copied from the raw message, so
nothing a station adds is forwarded) and ``tuyen_tier``; the key is the record key
(pseudonymised on the national tier). The national output's headers are rebuilt from the
national record itself: its keyed event id, its pseudonymous subject, the province (or the
station of a station-level record) as source, and the first instant of the entry month as
time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from schemas.envelope import SPECVERSION, format_time
from schemas.tier import TierName
from schemas.topics import TIER_DISTRICT, TIER_NATIONAL, TIER_PROVINCE, VALID
from streams.national import national_ce_time, national_record, national_source
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


def route(
    record: Mapping[str, Any], pseudonymiser: Pseudonymiser, *, publish_valid: bool = False
) -> list[Routed]:
    """The outputs of one validated record: district, province, national, and first the
    valid stream with ``publish_valid`` (``StreamsConfig.publish_valid``)."""
    national = national_record(record, pseudonymiser)
    key = record["record_key"]
    valid = [Routed("valid", key, record)] if publish_valid else []
    return [
        *valid,
        Routed("district", key, record),
        Routed("province", key, record),
        Routed("national", national["record_key"], national),
    ]


def _ce_headers(record: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The CloudEvents headers of a tier record, from its validated fields (``ce_time`` in
    the canonical UTC form, ``ce_dataschema`` at the record's current major)."""
    rt = record["record_type"]
    return [
        _SPEC_HEADER,
        ("ce_id", record["event_id"].encode()),
        _pair("ce_source", record["station_code"], None),
        _pair("ce_type", rt, record["op"]),
        ("ce_time", format_time(record["event_time"]).encode()),
        _pair("ce_dataschema", rt, record["schema_major"]),
        ("ce_subject", record["record_id"].encode()),
        _CONTENT_TYPE_HEADER,
    ]


#: header pairs that repeat from event to event (``ce_source``, ``ce_type``,
#: ``ce_dataschema``), made once (issue 17): keyed by what each is made of; bounded,
#: cleared when full
_PAIRS: dict[tuple[str, Any, Any], tuple[str, bytes]] = {}
_PAIRS_LIMIT: Final = 65536


def _pair(name: str, a: Any, b: Any) -> tuple[str, bytes]:
    """The ``(name, value)`` header made of ``a`` and ``b``, remembered: ``ce_type``
    ``vn.health.<a>.<b>``, ``ce_dataschema`` ``<a>/v<b>``, ``ce_source`` ``station/<a>``
    (``b`` None) or ``a`` itself (a national record's source, ``b`` True)."""
    key = (name, a, b)
    got = _PAIRS.get(key)
    if got is None:
        if name == "ce_type":
            value = f"vn.health.{a}.{b}"
        elif name == "ce_dataschema":
            value = f"{a}/v{b}"
        else:
            value = f"station/{a}" if b is None else a
        if len(_PAIRS) >= _PAIRS_LIMIT:
            _PAIRS.clear()
        got = _PAIRS[key] = (name, value.encode())
    return got


#: a national record's ce_time by entry month (one instant per month: built once per month;
#: bounded, cleared when full)
_MONTH_TIMES: dict[str, bytes] = {}
_MONTH_TIMES_LIMIT: Final = 1024


def _national_time(national: Mapping[str, Any]) -> bytes:
    month = national["event_month"]
    got = _MONTH_TIMES.get(month)
    if got is None:
        if len(_MONTH_TIMES) >= _MONTH_TIMES_LIMIT:
            _MONTH_TIMES.clear()
        got = _MONTH_TIMES[month] = national_ce_time(national).encode()
    return got


def _national_headers(national: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The CloudEvents headers of a national record, from its own (coarsened, keyed) fields:
    nothing of the record-level event (its id, station, exact time) is in them."""
    rt = national["record_type"]
    return [
        _SPEC_HEADER,
        ("ce_id", national["event_id"].encode()),
        _pair("ce_source", national_source(national), True),
        _pair("ce_type", rt, national["op"]),
        ("ce_time", _national_time(national)),
        _pair("ce_dataschema", rt, national["schema_major"]),
        ("ce_subject", national["record_id"].encode()),
        _CONTENT_TYPE_HEADER,
    ]


_SPEC_HEADER: Final = ("ce_specversion", SPECVERSION.encode())
_CONTENT_TYPE_HEADER: Final = ("content-type", b"application/json")


def tier_headers(routed: Routed) -> list[tuple[str, bytes]]:
    """The output's CloudEvents headers (rebuilt from the record, see :func:`_ce_headers`;
    from the national record itself on the national tier) plus ``tuyen_tier``."""
    if routed.tier == "national":
        return [*_national_headers(routed.record), (H_TIER, b"national")]
    return [*_ce_headers(routed.record), (H_TIER, routed.tier.encode())]


_TIER_HEADERS: Final = {tier: (H_TIER, tier.encode()) for tier in TIER_TOPICS}


def route_headers(
    record: Mapping[str, Any], national: Mapping[str, Any], tiers: Sequence[TierName]
) -> tuple[list[tuple[str, bytes]], ...]:
    """:func:`tier_headers` of the record-level ``record``'s outputs to ``tiers`` (in that
    order; ``national``: its national copy's, whose headers come from that copy)."""
    base = _ce_headers(record)
    out = []
    for t in tiers:
        headers = _national_headers(national) if t == "national" else base.copy()
        headers.append(_TIER_HEADERS[t])
        out.append(headers)
    return tuple(out)
