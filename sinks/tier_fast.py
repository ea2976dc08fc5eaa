"""The tier encoder's fast path: tier record values → Arrow with msgspec, ``data`` kept as sent.

msgspec decodes each value straight into typed Structs generated from the store's column
declarations and the envelope model (:func:`fast_plan`: one declaration per name, nothing here
names a record type or a column): the envelope with the model's literals, bounds (and the
int64 range), required fields and no unknown field when the model forbids extras; ``data``
kept as the bytes the worker wrote (``msgspec.Raw``), then decoded once more into the payload
Struct (scalars typed, nested fields again as their bytes). ``data`` and the nested payload
columns are stored **as the worker wrote them** (orjson's compact form, byte-identical to what
the per-row path re-serialises: see docs/stores.md, "Stored as written").

This path only ever stores a row the per-row path (:mod:`sinks.tier_batch` over orjson) would
store, with the same values; it is stricter, never looser. A value it does not take whole —
its decode or a check fails, ``data`` is not valid UTF-8, a number in ``data`` that orjson
refuses or rewrites could be in it (:func:`_odd_numbers`), a column check fails — goes to the
per-row path, which stores it or dead-letters it with today's reason. Pure: no Kafka, no I/O.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from msgspec.structs import astuple
from pydantic import BaseModel

from schemas.national import NationalRecord
from schemas.registry import RecordType
from schemas.tier import TierRecord
from sinks.columns import Column, base_columns, store_columns
from sinks.store import safe_value
from sinks.tier_batch import TierPlan, column_failures, tier_plan

__all__ = [
    "MONTH",
    "RECORD_TYPES",
    "FastPlan",
    "Indexed",
    "Payload",
    "envelope_model",
    "fast_convert",
    "fast_plan",
    "fast_tables",
    "take",
]

_INT64 = {"ge": -(2**63), "le": 2**63 - 1}
_FLOAT = {"ge": -sys.float_info.max, "le": sys.float_info.max}
_NULL = msgspec.Raw(b"null")
# A number orjson refuses (beyond a double) or rewrites (an integer beyond 64 bits, an exponent
# beyond ±99) has 20 digits in a row or an exponent of 3 digits or more that ends the number
# (not a hex run inside a string: "…e123a…"). Searched for in a translation of the bytes:
# digits as 0, e/E and signs as e (one search finds "e400" and "e-400"; a hit is an exponent
# if its e is an e/E, or a sign after one), what may end a number as ",", anything else as
# "a" (so the searches skip ahead on most bytes).
_NUMBERS = bytes(
    b"0"[0]
    if chr(c).isdigit() and c < 128
    else b"e"[0]
    if c in b"eE+-"
    else b","[0]
    if c in b",}] \t\n\r"
    else b"a"[0]
    for c in range(256)
)
_LONG = b"0" * 20
_E = b"e000"
_EXPONENT = re.compile(rb"e0{3,},")


@dataclass(frozen=True)
class FastPlan:
    """The fast path of one store file's columns (``plan``): the decoders and where each
    column sits in the decoded Structs' tuples."""

    plan: TierPlan
    envelope: msgspec.json.Decoder[Any]
    payload: msgspec.json.Decoder[Any]
    envelope_at: tuple[int, ...]  # plan.envelope column i ↔ envelope tuple position
    data_at: int | None  # position of ``data`` in the envelope tuple
    envelope_json_at: tuple[int, ...]  # plan.envelope_json (``data`` included)
    width: int  # fields of the payload Struct (scalars then nested)


Payload = tuple[Any, ...]


def _scalar_type(col: Column, bounds: dict[str, Any]) -> Any:
    """The msgspec type of a scalar column as it arrives in JSON (temporal values as text,
    Arrow parses them as the per-row path does), with its bounds."""
    arrow = col.arrow
    if pa.types.is_boolean(arrow):
        return bool
    if pa.types.is_integer(arrow):
        return Annotated[int, msgspec.Meta(**{**_INT64, **bounds})]
    if pa.types.is_floating(arrow):
        return Annotated[float, msgspec.Meta(**{**_FLOAT, **bounds})]
    if pa.types.is_string(arrow) or pa.types.is_timestamp(arrow) or pa.types.is_date(arrow):
        return str
    raise TypeError(f"no msgspec type for column {col.name} ({arrow})")


def _struct(name: str, fields: list[tuple[str, Any, bool]], forbid: bool) -> type:
    """A Struct of (source key, type, required) in order, fields ``f0``… renamed to the keys
    (any key, even one that is no Python name)."""
    spec: list[Any] = [
        (f"f{i}", typ) if required else (f"f{i}", typ, None if typ is not msgspec.Raw else _NULL)
        for i, (_, typ, required) in enumerate(fields)
    ]
    rename = {f"f{i}": src for i, (src, _, _) in enumerate(fields)}
    return msgspec.defstruct(
        name, spec, rename=rename, kw_only=True, forbid_unknown_fields=forbid, gc=False
    )


@cache
def fast_plan(model: type[BaseModel], columns: tuple[Column, ...]) -> FastPlan:
    """The fast path for records of the envelope ``model`` into a file with ``columns``
    (the same plan :func:`sinks.tier_batch.tier_plan` gives the per-row path)."""
    plan = tier_plan(model, columns)
    scalar = {src: col for src, col in plan.envelope}
    literals = {name: tuple(values.to_pylist()) for name, values in plan.literals}
    bounds: dict[str, dict[str, Any]] = {}
    for name, attr, limit in plan.bounds:
        bounds.setdefault(name, {})[attr] = limit
    fields: list[tuple[str, Any, bool]] = []
    for name in model.model_fields:
        if name in literals:
            typ: Any = Literal[literals[name]]
        elif name in scalar:
            typ = _scalar_type(scalar[name], bounds.get(name, {}))
        else:  # data (JSON text), or a field the file has no column for: as sent
            typ = msgspec.Raw
        if typ is not msgspec.Raw and name not in plan.not_null:
            typ = typ | None
        fields.append((name, typ, name in plan.required))
    names = list(model.model_fields)
    payload = [(src, _scalar_type(col, {}) | None, False) for src, col in plan.scalars]
    payload += [(src, msgspec.Raw, False) for src, _ in plan.nested]
    return FastPlan(
        plan=plan,
        envelope=msgspec.json.Decoder(_struct("Envelope", fields, plan.allowed is not None)),
        payload=msgspec.json.Decoder(_struct("Payload", payload, False) | None),
        envelope_at=tuple(names.index(src) for src, _ in plan.envelope),
        data_at=names.index("data") if "data" in names else None,
        envelope_json_at=tuple(names.index(src) for src, _ in plan.envelope_json),
        width=len(payload),
    )


def _odd_rows(datas: Sequence[msgspec.Raw]) -> set[int]:
    """Positions of the ``data`` values that may hold a number orjson refuses or rewrites,
    found in one pass over them all (false positives only cost the per-row path)."""
    joined = b" ".join(datas)  # (a run of digits ends with its value)
    text = joined.translate(_NUMBERS)
    hits: list[int] = []
    at = text.find(_LONG)
    while at >= 0:
        hits.append(at)
        at = text.find(_LONG, at + 20)
    at = text.find(_E)
    while at >= 0:
        if _EXPONENT.match(text, at) and (
            joined[at] in b"eE" or (at and joined[at - 1] in b"eE")  # (a sign after an e)
        ):
            hits.append(at)
        at = text.find(_E, at + 1)
    if not hits:
        return set()
    ends = np.cumsum(np.fromiter(map(len, datas), np.int64, len(datas)) + 1)
    return set(np.searchsorted(ends, hits, side="right").tolist())


def take(
    fp: FastPlan, index: list[int], envs: list[tuple[Any, ...]]
) -> tuple[list[int], list[tuple[Any, ...]], list[Payload], list[int]]:
    """Of decoded envelopes (and their message indexes): the indexes, envelopes and payloads
    of those the fast path takes, and the indexes of the others (``data`` not an object, or
    numbers that need orjson's judgement)."""
    empty = (None,) * fp.width
    if fp.data_at is None:
        return index, envs, [empty] * len(envs), []
    datas = list(map(itemgetter(fp.data_at), envs))
    decode = fp.payload.decode
    odd = _odd_rows(datas)
    if not odd:  # the usual case: every row at once
        try:
            structs = list(map(decode, datas))
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            if None in structs:
                return index, envs, [empty if p is None else astuple(p) for p in structs], []
            return index, envs, list(map(astuple, structs)), []
    kept: tuple[list[int], list[tuple[Any, ...]], list[Payload]] = ([], [], [])
    slow: list[int] = []
    for pos, (i, env, data) in enumerate(zip(index, envs, datas, strict=True)):
        try:
            if pos in odd:
                raise ValueError
            struct = decode(data)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            slow.append(i)
            continue
        kept[0].append(i)
        kept[1].append(env)
        kept[2].append(empty if struct is None else astuple(struct))
    return *kept, slow


def _text(raws: Sequence[Any]) -> pa.Array:
    """JSON text of each raw value as sent (``null`` and absent: NULL; no JSON text is
    empty); raises unless every text is valid UTF-8."""
    parts = raws
    try:  # the usual case: no value absent (None has no length) and none ``null``
        lengths = np.fromiter(map(len, raws), np.int64, len(raws))
        if (lengths == len(_NULL)).any() and _NULL in raws:
            raise TypeError
    except TypeError:
        parts = [b"" if r is None or r == _NULL else r for r in raws]
        lengths = np.fromiter(map(len, parts), np.int64, len(parts))
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    valid = lengths > 0
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    text = pa.LargeStringArray.from_buffers(
        len(parts), pa.py_buffer(offsets), pa.py_buffer(b"".join(parts)), mask
    )
    text.validate(full=True)  # UTF-8
    return text.cast(pa.string())


def _scalar_array(values: Sequence[Any], col: Column) -> pa.Array:
    if pa.types.is_timestamp(col.arrow) or pa.types.is_date(col.arrow):
        return pa.array(values, pa.string()).cast(col.arrow)
    return pa.array(values, col.arrow)


def _column(values: tuple[Any, ...], col: Column) -> pa.Array:
    """A scalar column; one with the same value in every row (the grouped-by fields, the
    schema majors, a province's name…) repeated, not converted value by value. Not a float
    column: -0.0 equals 0.0 but is another value."""
    first = values[0]
    if (
        not pa.types.is_floating(col.arrow)
        and values[:8].count(first) == len(values[:8])
        and values.count(first) == len(values)
    ):
        return pa.repeat(_scalar_array([first], col)[0], len(values))
    return _scalar_array(values, col)


def fast_convert(
    fp: FastPlan, envelopes: Sequence[tuple[Any, ...]], payloads: Sequence[Payload]
) -> pa.Table:
    """The table of decoded rows (envelope and payload tuples); raises when any row does not
    convert or fails a column check (the caller gives the rows to the per-row path)."""
    plan = fp.plan
    env = list(zip(*envelopes, strict=True))
    pay = list(zip(*payloads, strict=True)) if fp.width else []
    arrays: dict[str, pa.Array] = {}
    for at, (_, col) in zip(fp.envelope_at, plan.envelope, strict=True):
        arrays[col.name] = _column(env[at], col)
    for at, (_, col) in zip(fp.envelope_json_at, plan.envelope_json, strict=True):
        arrays[col.name] = _text(env[at])
    for i, (_, col) in enumerate(plan.scalars):
        arrays[col.name] = _column(pay[i], col)
    for i, (_, col) in enumerate(plan.nested, start=len(plan.scalars)):
        arrays[col.name] = _text(pay[i])
    table = pa.Table.from_arrays([arrays[c.name] for c in plan.columns], schema=plan.schema)
    for mask, why in column_failures(plan, table):
        if pc.any(mask).as_py():
            raise ValueError(why)
    return table


# ---- a batch of tier messages -------------------------------------------------------------

RECORD_TYPES = frozenset(rt.value for rt in RecordType)
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@cache
def _fast(tier: str, record_type: str | None) -> FastPlan:
    """The fast path of a record type's file, or (None) of the envelope alone."""
    columns = base_columns(tier) if record_type is None else store_columns(tier, record_type)
    return fast_plan(envelope_model(tier), columns)


def envelope_model(tier: str) -> type[TierRecord] | type[NationalRecord]:
    """The envelope model of the ``tier`` store's records (the national store: national
    records, ``schemas.national``)."""
    return NationalRecord if tier == "national" else TierRecord


_KEY = ("record_type", "province_code", "event_month")  # what a batch is grouped by


def _fast_key(key: tuple[Any, Any, Any]) -> tuple[str, str, str] | None:
    """(province, record type, month) of a decoded envelope's (record type, province, month),
    or None: the per-row path decides (``sinks.encode._place``)."""
    rt, prov, month = key
    if rt not in RECORD_TYPES or not isinstance(prov, str) or not prov:
        return None
    if not isinstance(month, str) or not MONTH.fullmatch(month):
        return None
    return safe_value(prov), rt, month


Indexed = list[tuple[pa.Table, list[int]]]  # a directory's tables, each with its message indexes


def _fast_groups(
    tier: str, values: Sequence[bytes | None], decode: Callable[[Any], Any] | None = None
) -> tuple[dict[tuple[Any, ...], list[int]], list[tuple[Any, ...]], list[int]]:
    """The indexes of the values the fast path decodes, by (record type, province, month)
    as sent; their decoded envelopes (by message index; None for the others); the indexes of
    the others."""
    decode = decode or _fast(tier, None).envelope.decode
    fields = list(envelope_model(tier).model_fields)
    at = tuple(map(fields.index, _KEY))
    slow: list[int] = []
    try:  # the usual case: every message at once
        envs: list[Any] = list(map(astuple, map(decode, values)))  # type: ignore[arg-type]
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):  # (None: a TypeError)
        envs = []
        for i, raw in enumerate(values):
            try:
                envs.append(astuple(decode(raw)))  # type: ignore[arg-type]
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                envs.append(None)
                slow.append(i)
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, key in enumerate(map(itemgetter(*at), envs) if not slow else _keys(envs, at)):
        if key is not None:
            groups[key].append(i)
    return groups, envs, slow


def _keys(envs: list[Any], at: tuple[int, ...]) -> Iterator[tuple[Any, ...] | None]:
    get = itemgetter(*at)
    return (None if env is None else get(env) for env in envs)


def fast_tables(
    tier: str,
    values: Sequence[bytes | None],
    out: dict[str, Indexed],
    decode: Callable[[Any], Any] | None = None,
) -> list[int]:
    """The fast path over a batch of tier message values: the tables of what it stores into
    ``out`` (by store directory, with the indexes of their rows' messages); the indexes of
    the messages it leaves to the per-row path. ``decode``: the envelope's decoder (default:
    JSON, the tier topics' wire format; another is only a study of other wire formats,
    benchmarks/bench_sinks.py)."""
    base = _fast(tier, None)
    groups, decoded, slow = _fast_groups(tier, values, decode)
    for key, rows in groups.items():
        place = _fast_key(key)
        fp = None if place is None else _fast(tier, place[1])
        if place is None or fp is None or fp.plan.envelope != base.plan.envelope:
            slow += rows  # (or a payload column named like the envelope's)
            continue
        envs = [decoded[i] for i in rows]
        index, envs, payloads, left = take(fp, rows, envs)
        slow += left
        if not index:
            continue
        try:
            table = fast_convert(fp, envs, payloads)
        except Exception:  # a row at fault: the per-row path finds it
            slow += index
            continue
        prov, rt, month = place
        out[f"{tier}/province={prov}/record_type={rt}/month={month}"].append((table, index))
    return sorted(slow)
