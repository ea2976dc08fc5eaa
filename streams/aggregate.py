"""Live tiered aggregates: per-record contributions → deltas → counters. Pure.

A record's current version contributes ``schemas.elements.contributions`` to one period at
its station, and the same to the district, province and national units it sat under at
event time. A new version retracts what the previous version contributed (kept in the
record's state, see ``streams.state``) and adds its own; a delete only retracts. So the
counters always equal :func:`recompute` over the final record states.

Deltas are exchanged between the validating agent and the counting agent as *idempotent*
messages: each entry is tagged with its source (raw partition, offset) and the counting side
applies an entry only when its offset is above the high-water mark it keeps per (delta
partition, raw partition). Re-processing a raw batch after a crash therefore cannot count
twice. Delta partition of a unit = ``crc32(unit code) % partitions`` (stable across runs).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from schemas.elements import contribution_period, contributions
from schemas.tier import TierRecord

__all__ = [
    "NATIONAL_CODE",
    "Contribution",
    "DeltaBuilder",
    "LiveCounters",
    "aggregate_key",
    "contribution",
    "deltas",
    "partition_for",
    "recompute",
]

NATIONAL_CODE: Final = "VN"
# [period, [[tier, code], ...], {element: value}]  (JSON-shaped: stored in the record state)
Contribution = list[Any]
DeltaKey = tuple[str, str, str, str]  # tier, unit code, period, element
_HW = "__hw__"


def aggregate_key(unit: str, period: str, element: str) -> str:
    """Key of a live aggregate (``aggregates.live`` and the counters table)."""
    return f"{unit}|{period}|{element}"


def partition_for(unit: str, partitions: int) -> int:
    """The delta/counter partition of a unit."""
    return zlib.crc32(unit.encode()) % partitions


def _fields(record: TierRecord | Mapping[str, Any]) -> Mapping[str, Any]:
    return record if isinstance(record, Mapping) else record.__dict__


def contribution(record: TierRecord | Mapping[str, Any]) -> Contribution | None:
    """What ``record`` (a :class:`TierRecord` or its fields as a dict, as the current
    version) contributes; ``None`` for a delete/nothing."""
    r = _fields(record)
    data = r["data"]
    if r["op"] == "delete" or data is None:
        return None
    rt = r["record_type"]
    elements = contributions(rt, data)
    if not elements:
        return None
    period = r.get("service_month") or contribution_period(rt, data, r["event_month"])
    units = [
        ["station", r["station_code"]],
        ["district", r["district_code"]],
        ["province", r["province_code"]],
        ["national", NATIONAL_CODE],
    ]
    return [period, units, elements]


def deltas(previous: Contribution | None, current: Contribution | None) -> dict[DeltaKey, int]:
    """Retract ``previous``, add ``current``; zero deltas are left out."""
    if previous is None:  # the common case: a new record
        if current is None:
            return {}
        period, units, elements = current
        return {
            (tier, code, period, element): int(value)
            for tier, code in units
            for element, value in elements.items()
            if int(value)
        }
    out: dict[DeltaKey, int] = defaultdict(int)
    for sign, c in ((-1, previous), (1, current)):
        if c is None:
            continue
        period, units, elements = c
        for tier, code in units:
            for element, value in elements.items():
                out[(tier, code, period, element)] += sign * int(value)
    return {k: v for k, v in out.items() if v}


class DeltaBuilder:
    """Collects one raw batch's deltas into one message per (delta partition, raw partition)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        # (delta partition, raw partition) -> {"sp", "units", "e"}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._partition_of: dict[str, int] = {}

    def _entry(
        self, code: str, tier: str, source_partition: int, by_target: dict[int, dict[str, int]]
    ) -> dict[str, int]:
        """The entry of one event's deltas for the message ``code``'s unit goes in (that
        message made on first use, the unit's tier noted in it)."""
        q = self._partition_of.get(code)
        if q is None:
            q = self._partition_of[code] = partition_for(code, self.partitions)
        msg = self._messages.get((q, source_partition))
        if msg is None:
            msg = self._messages[(q, source_partition)] = {
                "sp": source_partition,
                "units": {},
                "e": [],
            }
        msg["units"][code] = tier
        entry = by_target.get(q)
        if entry is None:
            entry = by_target[q] = {}
        return entry

    def _close(
        self,
        source_partition: int,
        offset: int,
        by_target: dict[int, dict[str, int]],
        event_ms: int | None,
    ) -> None:
        """One event's entries appended to their messages."""
        messages = self._messages
        for q, entry in by_target.items():
            item = [offset, entry] if event_ms is None else [offset, entry, event_ms]
            messages[(q, source_partition)]["e"].append(item)

    def add(
        self,
        source_partition: int,
        offset: int,
        d: Mapping[DeltaKey, int],
        event_ms: int | None = None,
    ) -> None:
        """Add one event's deltas; ``event_ms`` (its event time) travels with the entry so the
        counting side can stamp the aggregates it changes with the event time they reflect."""
        by_target: dict[int, dict[str, int]] = {}
        last_code = None
        entry: dict[str, int] = {}
        for (tier, code, period, element), value in d.items():
            if code != last_code:  # deltas() lists a unit's entries together: once per unit
                last_code = code
                entry = self._entry(code, tier, source_partition, by_target)
            entry[f"{code}|{period}|{element}"] = value
        self._close(source_partition, offset, by_target, event_ms)

    def add_new(
        self, source_partition: int, offset: int, current: Contribution, event_ms: int
    ) -> bool:
        """:meth:`add` of ``deltas(None, current)`` (a record's first contribution, the common
        case) without building that dict; ``False`` when it adds nothing (no non-zero
        element)."""
        period, units, elements = current
        entries = [(f"{period}|{element}", int(v)) for element, v in elements.items() if int(v)]
        if not entries or not units:
            return False
        by_target: dict[int, dict[str, int]] = {}
        for tier, code in units:
            entry = self._entry(code, tier, source_partition, by_target)
            for suffix, value in entries:
                entry[f"{code}|{suffix}"] = value
        self._close(source_partition, offset, by_target, event_ms)
        return True

    def drain(self) -> list[tuple[int, dict[str, Any]]]:
        """``(delta partition, message)`` pairs, and forget them."""
        out = [(q, m) for (q, _), m in self._messages.items()]
        self._messages = {}
        return out


class LiveCounters:
    """The counting side: applies delta messages idempotently to a mapping.

    ``data`` maps ``unit|period|element`` → ``[tier, value]`` and ``__hw__|q|p`` → offset. Any
    ``MutableMapping`` works (the shell passes the faust table's storage).
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        #: counter key → the newest event time (ms) applied to it by the last :meth:`apply`
        #: calls (not persisted: only what the next published update reflects)
        self.event_ms: dict[str, int] = {}

    def apply(self, partition: int, message: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one delta message that arrived on delta ``partition``; return what changed
        (counter keys and the high-water key) with their new values."""
        sp = int(message["sp"])
        hw_key = f"{_HW}|{partition}|{sp}"
        hw = self.data.get(hw_key, -1)
        units: Mapping[str, str] = message["units"]
        changed: dict[str, Any] = {}
        for item in message["e"]:
            offset, entry = item[0], item[1]
            if offset <= hw:
                continue
            hw = offset
            event_ms = item[2] if len(item) > 2 else None
            for key, delta in entry.items():
                if event_ms is not None and event_ms > self.event_ms.get(key, -1):
                    self.event_ms[key] = event_ms
                cur = self.data.get(key)
                if cur is None:
                    cur = [units[key.split("|", 1)[0]], 0]
                new = [cur[0], cur[1] + delta]
                self.data[key] = new
                changed[key] = new
        if hw != self.data.get(hw_key, -1):
            self.data[hw_key] = hw
            changed[hw_key] = hw
        return changed

    def values(self) -> dict[str, int]:
        """Every counter (not the high-water marks), ``key → value``."""
        return {k: v[1] for k, v in self.data.items() if not k.startswith(_HW)}


def recompute(records: Iterable[TierRecord | Mapping[str, Any]]) -> dict[str, int]:
    """The oracle: counters from the final state of each record (the highest version seen).

    Zero counters are left out.
    """
    final: dict[str, Mapping[str, Any]] = {}
    for record in records:
        r = _fields(record)
        cur = final.get(r["record_id"])
        if cur is None or r["record_version"] > cur["record_version"]:
            final[r["record_id"]] = r
    out: dict[str, int] = defaultdict(int)
    for r in final.values():
        c = contribution(r)
        if c is None:
            continue
        period, units, elements = c
        for _tier, code in units:
            for element, value in elements.items():
                out[aggregate_key(code, period, element)] += int(value)
    return {k: v for k, v in out.items() if v}


def is_counter_key(key: str) -> bool:
    return not key.startswith(_HW)
