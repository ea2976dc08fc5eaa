"""The signed bytes: RFC 8785 canonical JSON of a change, by the project's fast path
(``schemas.canonical.canonical_json``) beside the ``rfc8785`` reference and beside plain
sorted orjson (what was signed before, not RFC 8785 for floats), and the partition check.
CPU per event beside each rate: the stream worker verifies ~3k events/s, so a few µs matter.
No broker needed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785

from benchmarks.framework import BenchContext, BenchResult, Measurement
from schemas.canonical import canonical_json
from schemas.examples import example_change
from schemas.partition import partition_for
from schemas.signing import signed_object


def _objects() -> list[dict[str, Any]]:
    """Signed objects of every kind of payload (floats in encounters' vitals)."""
    rts = ("encounter", "immunization", "person", "stock_snapshot", "chronic_followup")
    return [signed_object(example_change(rt)) for rt in rts]


def _rate(n: int, objs: list[Any], fn: Callable[[Any], object]) -> tuple[float, float]:
    """(items/s, CPU µs per item) of ``fn`` over ``objs`` repeated to ``n`` calls."""
    reps = max(1, n // len(objs))
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(reps):
        for o in objs:
            fn(o)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    count = reps * len(objs)
    return count / wall, cpu / count * 1e6


def run(ctx: BenchContext) -> list[BenchResult]:
    n = ctx.n(200_000)
    objs = _objects()
    for o in objs:
        assert canonical_json(o) == rfc8785.dumps(o)
    sort = orjson.OPT_SORT_KEYS
    _rate(n // 10, objs, canonical_json)  # warm-up
    fast, fast_us = _rate(n, objs, canonical_json)
    plain, plain_us = _rate(n, objs, lambda o: orjson.dumps(o, option=sort))
    ref, ref_us = _rate(n // 20, objs, rfc8785.dumps)
    keys = [o["record_id"].split(":")[0].encode() for o in objs]
    part, part_us = _rate(n, keys, lambda k: partition_for(k, 48))
    return [
        BenchResult(
            "signed bytes: RFC 8785 fast path (schemas.canonical)",
            Measurement(fast, "events/s"),
            "rfc8785 package (reference)",
            Measurement(ref, "events/s"),
            target="a few µs per event",
            extra={"cpu_us_per_event": round(fast_us, 2), "reference_cpu_us": round(ref_us, 2)},
        ),
        BenchResult(
            "signed bytes: RFC 8785 fast path (schemas.canonical)",
            Measurement(fast, "events/s"),
            "sorted orjson (the bytes signed before; not RFC 8785 for floats)",
            Measurement(plain, "events/s"),
            extra={"cpu_us_per_event": round(fast_us, 2), "orjson_cpu_us": round(plain_us, 2)},
        ),
        BenchResult(
            "partition check: murmur2 of the key (schemas.partition)",
            Measurement(part, "keys/s"),
            extra={"cpu_us_per_event": round(part_us, 2)},
        ),
    ]
