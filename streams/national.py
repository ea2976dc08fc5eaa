"""The national transform: a validated tier record → its national copy, by allow-list. Pure.

Everything comes from ``schemas.national``: the envelope is :class:`~schemas.national.
NationalRecord`, the payload of each record type the rules of ``NATIONAL_FIELDS``; what is not
named there does not reach the national tier. Keyed values (one key, the pseudonym key, in
separate HMAC domains so no value equals another):

- the person's pseudonym ``p`` + 32 hex of HMAC(``health_id:<id>``) for every health id and
  for the record key of person-centred records (same person → same pseudonym everywhere);
- the record id: ``<key pseudonym>:<20 hex of HMAC(record_id:<id>)>`` (station-level records
  too: their key is pseudonymised in the ``station_record_key`` domain);
- the event id: ``e`` + 32 hex of HMAC(``national_event_id:<id>``): deterministic, so a
  replayed output deduplicates in the national store as the original does;
- the version rank: ``record_version`` + a per-record offset in [2⁴⁰, 2⁴¹) (HMAC of the
  record id): the versions of a record keep their order, no rank equals a record-level version;
- ``visit_order`` of a chronic follow-up: the visit's day of month + an offset per (person,
  month) in [2¹⁶, 2³¹): orders one person's visits inside a month, and says nothing else.

Months are taken in Vietnam time (``event_month`` as the validator wrote it; the receive time
converted here). Person-level records keep only the province; station-level ones (resource
snapshots, report submissions) keep station and district as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from schemas.envelope import format_time
from schemas.hierarchy import VN_TZ
from schemas.national import (
    EVENT_DOMAIN,
    NATIONAL_FIELDS,
    STATION_LEVEL_TYPES,
    Derived,
    FieldRule,
    Keep,
    Month,
    Pseudonym,
)
from streams.pseudonymise import Pseudonymiser

__all__ = [
    "national_ce_time",
    "national_data",
    "national_event_id",
    "national_record",
    "national_source",
]

_RANK_BASE: Final = 1 << 40
_ORDER_BASE: Final = 1 << 16
_PERSON: Final = "person"
_LOW_BIRTH_WEIGHT_BELOW: Final = 2500  # grams (WHO)


def _int_of(p: Pseudonymiser, value: str, domain: str, span: int) -> int:
    """A keyed integer in [0, span) for ``value`` in ``domain``."""
    digest = p.digest(value, domain)
    return int.from_bytes(digest[:8], "big") % span


def _month_of(value: Any) -> str | None:
    return value[:7] if isinstance(value, str) and len(value) >= 7 else None


def _vn(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(VN_TZ)


# ---- derived payload values ------------------------------------------------------------------


def _infant(data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    return data.get("age_days") is not None or data.get("age_years") == 0


def _low_birth_weight(data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    weight = data.get("weight_grams")
    return None if not isinstance(weight, int) else weight < _LOW_BIRTH_WEIGHT_BELOW


def _weighed(data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    return isinstance(data.get("weight_grams"), int)


def _visit_order(data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    visit = data.get("visit_date")
    if not isinstance(visit, str) or len(visit) < 10 or not visit[8:10].isdigit():
        return None
    offset = _int_of(p, f"{record['record_key']}:{visit[:7]}", "visit_order", 1 << 31)
    return _ORDER_BASE + offset % ((1 << 31) - _ORDER_BASE) + int(visit[8:10])


def _encounter_link(data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    """The local part of the linked encounter's national record id (the link survives, the
    station's local id does not)."""
    link = data.get("encounter_local_id")
    if not isinstance(link, str):
        return None
    return p.pseudonym(f"{record['record_key']}:{link}", "record_id")[1:21]


_DERIVED: Final[dict[str, Callable[[Mapping[str, Any], Mapping[str, Any], Pseudonymiser], Any]]] = {
    "infant": _infant,
    "low_birth_weight": _low_birth_weight,
    "weighed": _weighed,
    "visit_order": _visit_order,
    "encounter_link": _encounter_link,
}


_KEEP, _PSEUDONYM, _MONTH, _NESTED, _DERIVE = range(5)
#: rules as (kind, payload field, national field, argument), compiled once from
#: ``NATIONAL_FIELDS`` (no rule-type tests per field and event)
_Plan = tuple[tuple[int, str, str, Any], ...]


def _plan(rules: Mapping[str, FieldRule], *, nested: bool = False) -> _Plan:
    """``rules`` compiled; ``nested``: inside an object, where Derived rules do not apply."""
    steps: list[tuple[int, str, str, Any]] = []
    for name, rule in rules.items():
        if isinstance(rule, Derived):
            if not nested:
                steps.append((_DERIVE, name, rule.out, _DERIVED[rule.how]))
        elif isinstance(rule, Keep):
            steps.append((_KEEP, name, name, None))
        elif isinstance(rule, Pseudonym):
            steps.append((_PSEUDONYM, name, name, None))
        elif isinstance(rule, Month):
            steps.append((_MONTH, name, rule.out, None))
        else:
            steps.append((_NESTED, name, name, _plan(rule.fields, nested=True)))
    return tuple(steps)


_PLANS: Final[dict[str, _Plan]] = {rt: _plan(rules) for rt, rules in NATIONAL_FIELDS.items()}


def _run(
    plan: _Plan, data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser
) -> dict[str, Any]:
    """The fields of ``data`` that ``plan`` allows, as it says."""
    out: dict[str, Any] = {}
    for kind, name, out_name, arg in plan:
        if kind == _DERIVE:
            out[out_name] = arg(data, record, p)
        elif name in data:
            value = data[name]
            if kind == _KEEP:
                out[name] = value
            elif kind == _PSEUDONYM:
                out[name] = p.pseudonym(value) if isinstance(value, str) else None
            elif kind == _MONTH:
                out[out_name] = _month_of(value)
            else:
                out[name] = _reduce(value, arg, record, p)
    return out


def _reduce(value: Any, plan: _Plan, record: Mapping[str, Any], p: Pseudonymiser) -> Any:
    """An object (or each object of a list) reduced to a nested rule's ``plan``."""
    if isinstance(value, list):
        return [_reduce(v, plan, record, p) for v in value if isinstance(v, Mapping)]
    if not isinstance(value, Mapping):
        return None
    return _run(plan, value, record, p)


def national_data(
    record_type: str, data: Mapping[str, Any], record: Mapping[str, Any], p: Pseudonymiser
) -> dict[str, Any]:
    """The allow-listed after-image of ``record_type``: only the fields of
    ``NATIONAL_FIELDS[record_type]`` (an unknown record type keeps nothing)."""
    return _run(_PLANS.get(record_type, ()), data, record, p)


# ---- the envelope ----------------------------------------------------------------------------


def _ids(record: Mapping[str, Any], p: Pseudonymiser) -> tuple[str, str]:
    """(national record id, national record key)."""
    rt = record["record_type"]
    if rt in STATION_LEVEL_TYPES:
        key_p = p.pseudonym(record["record_key"], "station_record_key")
    else:
        key_p = p.pseudonym(record["record_key"])
        if rt == _PERSON:
            return key_p, key_p
    return f"{key_p}:{p.pseudonym(record['record_id'], 'record_id')[1:21]}", key_p


def national_event_id(event_id: str, p: Pseudonymiser) -> str:
    """The national tier's event id: ``e`` + 32 hex of HMAC(``national_event_id:<id>``)."""
    return "e" + p.digest(event_id, EVENT_DOMAIN)[:16].hex()


def national_record(record: Mapping[str, Any], p: Pseudonymiser) -> dict[str, Any]:
    """The national copy of the tier record ``record`` (a new dict in
    :class:`~schemas.national.NationalRecord` field order; ``record`` is left as it is)."""
    rt = record["record_type"]
    record_id, key = _ids(record, p)
    received_month, received_date = _received(record["received_time"])
    station_level = rt in STATION_LEVEL_TYPES
    data = record["data"]
    return {
        "event_id": national_event_id(record["event_id"], p),
        "record_type": rt,
        "record_id": record_id,
        "record_key": key,
        "op": record["op"],
        "record_version": _RANK_BASE
        + _int_of(p, record_id, "version_rank", _RANK_BASE)
        + record["record_version"],
        "schema_major": record["schema_major"],
        "event_month": record["event_month"],
        "service_month": record.get("service_month"),
        "received_month": received_month,
        "received_date": received_date if rt == "report_submission" else None,
        "station_code": record["station_code"] if station_level else None,
        "station_name": record["station_name"] if station_level else None,
        "district_code": record["district_code"] if station_level else None,
        "district_name": record["district_name"] if station_level else None,
        "province_code": record["province_code"],
        "province_name": record["province_name"],
        "pseudonymised": True,
        "data": national_data(rt, data, record, p) if data is not None else None,
    }


def _received(moment: datetime) -> tuple[str, str]:
    """(month, date) of the receive time ``moment`` in Vietnam, remembered for the last one
    (the same object: messages read in the same millisecond share it, ``faustio.raw_messages``)."""
    global _LAST_RECEIVED
    last = _LAST_RECEIVED
    if last[0] is moment:
        return last[1], last[2]
    vn = _vn(moment)
    month, day = f"{vn.year:04d}-{vn.month:02d}", vn.date().isoformat()
    _LAST_RECEIVED = (moment, month, day)
    return month, day


#: (the last receive time given to :func:`_received`, its month, its date): replaced whole
_LAST_RECEIVED: tuple[datetime | None, str, str] = (None, "", "")


def national_ce_time(national: Mapping[str, Any]) -> str:
    """The ``ce_time`` header of a national record: the first instant of its entry month
    (Vietnam time) in the canonical UTC form — the month, never the moment."""
    month = national["event_month"]
    first = datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=VN_TZ)
    return format_time(first.astimezone(UTC))


def national_source(national: Mapping[str, Any]) -> str:
    """The ``ce_source`` header of a national record: the station for station-level records,
    else the province (``province/<code>``)."""
    station = national.get("station_code")
    return f"station/{station}" if station else f"province/{national['province_code']}"
