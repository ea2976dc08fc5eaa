"""A national health report over a generated store vs a plain DuckDB aggregate scan.

The store is written directly with pyarrow in the store layout
``<root>/province/province=PP/record_type=RT/month=YYYY-MM/part-0.parquet`` (10 M change
records by default, issue 17's size: 2–9 minutes to generate on this machine) — the province
tier, which national reports are computed from (``sinks.reports.source_tier``; in production
every province's own root, here one root holding them all) — read through
``sinks.catalog.open_catalog`` as production opens it (locked; the current-state views dedupe
versions, so the report pays for that), and compared with one ``GROUP BY`` scan of the same
files in the same run, CPU (this process, DuckDB's threads included) beside wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.framework import BenchContext, BenchResult, Measurement
from schemas.hierarchy import Hierarchy
from schemas.kafka import KafkaConnection
from sinks.catalog import open_catalog, snapshot
from sinks.catalog_sql import SNAPSHOT, STATE_DIR, _decide_sql
from sinks.columns import arrow_schema, tier_columns
from sinks.compact import compact
from sinks.config import CompactConfig
from sinks.reports import ReportRequest, run_report
from sinks.reports.config import source_tier
from sinks.roots import StoreRoots

T = TypeVar("T")

BASE_RECORDS = 10_000_000
MIX = {  # share of change records per record type
    "encounter": 0.43,
    "chronic_enrolment": 0.02,
    "person": 0.12,
    "immunization": 0.15,
    "chronic_followup": 0.10,
    "antenatal_visit": 0.05,
    "birth": 0.03,
    "death": 0.01,
    "disease_case": 0.02,
    "staff_snapshot": 0.02,
    "bed_snapshot": 0.02,
    "equipment_snapshot": 0.02,
    "stock_snapshot": 0.01,
}
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]


def _placements(h: Hierarchy, n: int, provinces: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    at = date(2026, 6, 1)
    if provinces:
        stations = [s for p in provinces for s in h.stations_in(p, at)]
    else:
        stations = list(h.select_stations(at, limit=n, seed=1))
    rows = [h.lookup(s, at) for s in stations]
    return {
        "station_code": np.array([p.station.code for p in rows]),
        "station_name": np.array([p.station.name for p in rows]),
        "district_code": np.array([p.district.code for p in rows]),
        "district_name": np.array([p.district.name for p in rows]),
        "province_code": np.array([p.province.code for p in rows]),
        "province_name": np.array([p.province.name for p in rows]),
    }


def _payload(
    rt: str, n: int, rng: np.random.Generator, hid: np.ndarray, day: np.ndarray
) -> dict[str, object]:
    iso = np.datetime_as_string(day, unit="D")
    pick = rng.choice
    if rt == "encounter":
        return {
            "health_id": hid,
            "encounter_date": day,
            "encounter_type": pick(["outpatient"] * 9 + ["inpatient"], n),
            "diagnoses": np.full(n, '["J06"]'),
        }
    if rt == "person":
        born = day - rng.integers(0, 365 * 80, n).astype("timedelta64[D]")
        return {
            "health_id": hid,
            "full_name": np.full(n, "N"),
            "sex": pick(["male", "female"], n),
            "birth_date": born,
            "ethnicity": np.full(n, "01"),
            "residence_commune": np.full(n, "00004"),
            "registration_date": day - rng.integers(0, 365 * 3, n).astype("timedelta64[D]"),
        }
    if rt == "immunization":
        return {
            "health_id": hid,
            "vaccine": pick(["BCG", "OPV", "MEASLES", "IPV"], n),
            "dose_number": np.ones(n, dtype=np.int64),
            "date": day,
        }
    if rt == "chronic_followup":
        bp = pick(
            [
                '{"blood_pressure":{"systolic_mmhg":132,"diastolic_mmhg":84}}',
                '{"blood_pressure":{"systolic_mmhg":152,"diastolic_mmhg":94}}',
                '{"fasting_glucose_mmol_l":6.4}',
            ],
            n,
        )
        return {
            "health_id": hid,
            "condition": pick(["hypertension", "diabetes"], n),
            "visit_date": day,
            "measurements": bp,
            "on_treatment": rng.random(n) < 0.85,
        }
    if rt == "chronic_enrolment":
        return {
            "health_id": hid,
            "condition": pick(["hypertension", "diabetes"], n),
            "enrolment_date": day - rng.integers(0, 365 * 3, n).astype("timedelta64[D]"),
            "treatment_start_date": day,
        }
    if rt == "antenatal_visit":
        return {
            "health_id": hid,
            "visit_number": rng.integers(1, 6, n),
            "gestational_weeks": rng.integers(8, 40, n),
            "visit_date": day,
        }
    if rt == "birth":
        return {
            "mother_health_id": hid,
            "birth_date": day,
            "place": pick(["facility", "facility", "home"], n),
            "attendant": pick(["midwife", "doctor", "village_midwife"], n),
            "weight_grams": rng.integers(1800, 4200, n),
            "live_birth": rng.random(n) < 0.99,
        }
    if rt == "death":
        infant = rng.random(n) < 0.1
        return {
            "health_id": hid,
            "death_date": day,
            "cause_icd10": np.full(n, "R99"),
            "age_days": pa.array(np.where(infant, 5, 0), mask=~infant),
            "age_years": pa.array(np.full(n, 70), mask=infant),
        }
    if rt == "disease_case":
        return {
            "health_id": hid,
            "disease": pick(["DENGUE", "HFMD", "MEASLES"], n),
            "onset_date": day,
            "classification": pick(["suspected", "probable", "confirmed"], n),
        }
    period = np.array([s[:7] for s in iso])
    if rt == "staff_snapshot":
        counts = pick(
            [
                '{"doctor":1,"midwife":1,"ob_paediatric_assistant_doctor":0}',
                '{"doctor":0,"midwife":0,"ob_paediatric_assistant_doctor":1}',
            ],
            n,
        )
        return {"period": period, "as_of": day, "counts": counts}
    if rt == "bed_snapshot":
        return {"period": period, "as_of": day, "beds_total": rng.integers(2, 10, n)}
    if rt == "equipment_snapshot":
        items = (
            '[{"item":"ECG","quantity":2,"working":1},'
            '{"item":"BP_MONITOR","quantity":3,"working":3}]'
        )
        return {"period": period, "as_of": day, "items": np.full(n, items)}
    items = '[{"medicine":"ORS_SACHET","on_hand":0,"stock_out":true}]'
    return {"period": period, "as_of": day, "items": np.full(n, items)}


def generate(
    root: Path,
    total: int,
    h: Hierarchy,
    seed: int = 7,
    *,
    provinces: tuple[str, ...] = (),
    tiers: tuple[str, ...] = ("national",),
) -> int:
    """Write ``total`` change records (at 2,000 stations, or at every station of
    ``provinces``) into each of ``tiers``; returns the number written."""
    rng = np.random.default_rng(seed)
    places = _placements(h, 2000, provinces)
    start = np.datetime64("2026-01-01")
    written = 0
    for rt, share in MIX.items():
        n = max(1, int(total * share))
        idx = rng.integers(0, len(places["station_code"]), n)
        day = start + rng.integers(0, 365, n).astype("timedelta64[D]")
        hid = np.char.zfill(rng.integers(1, 10**9, n).astype(str), 10)
        if rt.endswith("_snapshot"):  # one record per station and month, a few versions
            rid = np.char.add(
                np.char.add(places["station_code"][idx], f":{rt}:"),
                np.datetime_as_string(day, unit="M"),
            )
        else:
            rid = np.char.add(np.char.add(hid, ":"), np.arange(n).astype(str))
            rid[: n // 10] = rid[n // 10 : 2 * (n // 10)]  # 10 % are corrections
        ts = day.astype("datetime64[us]") + rng.integers(0, 86_400, n).astype("timedelta64[s]")
        cols: dict[str, object] = {
            "event_id": np.char.add("ev-", np.arange(written, written + n).astype(str)),
            "record_type": np.full(n, rt),
            "record_id": rid,
            "record_key": hid,
            "op": np.where(rng.random(n) < 0.01, "delete", "upsert"),
            "record_version": rng.integers(1, 3, n),
            "station_seq": np.arange(n),
            "schema_major": np.ones(n, dtype=np.int64),
            "source_major": np.ones(n, dtype=np.int64),
            "event_time": ts,
            "received_time": ts + rng.integers(0, 86_400 * 8, n).astype("timedelta64[s]"),
            "processed_time": ts,
            "event_month": np.datetime_as_string(day, unit="M"),
            "service_month": np.datetime_as_string(day, unit="M"),
            **{k: v[idx] for k, v in places.items()},
            "signer": np.full(n, "hw"),
            "pseudonymised": np.ones(n, dtype=bool),
            "data": np.full(n, "{}"),
        }
        payload = _payload(rt, n, rng, hid, day)
        schema = arrow_schema(tier_columns(rt))
        arrays = {}
        for field in schema:
            v = cols.get(field.name, payload.get(field.name))
            if v is None:
                arrays[field.name] = pa.nulls(n, field.type)
            elif field.type == pa.timestamp("us", tz="UTC"):
                arrays[field.name] = pa.array(v).cast(pa.timestamp("us")).cast(field.type)
            elif isinstance(v, pa.Array):
                arrays[field.name] = v.cast(field.type)
            else:
                arrays[field.name] = pa.array(v).cast(field.type)
        table = pa.table(arrays, schema=schema)
        keys = pc.binary_join_element_wise(table["province_code"], table["event_month"], "|")
        for key in pc.unique(keys).to_pylist():
            prov, month = key.split("|")
            part = table.filter(pc.equal(keys, key))
            for tier in tiers:
                folder = root / tier / f"province={prov}" / f"record_type={rt}" / f"month={month}"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, folder / "part-0.parquet", compression="zstd")
        written += n
    return written


def _timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    got = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, got


def _report_vs_scan(
    root: Path | list[str], tier: str, h: Hierarchy, written: int, label: str
) -> BenchResult:
    """The report over ``root`` (or over several roots: every province's, as ``tuyen
    report`` national opens them) beside one scan of the same files."""
    roots = [str(root)] if isinstance(root, Path) else root
    request = ReportRequest(kind="health", tier="national", period="2026", principal="national")
    globs = ", ".join(f"'{r}/{tier}/province=*/record_type=*/month=*/*.parquet'" for r in roots)
    scan_sql = (
        f"SELECT record_type, province_code, event_month, count(*), count(DISTINCT record_id) "
        f"FROM read_parquet([{globs}], hive_partitioning = true, union_by_name = true) "
        "GROUP BY ALL"
    )
    opened = roots[0] if len(roots) == 1 else roots
    report_s, report_cpu, report = _timed(
        lambda: run_report(open_catalog(opened, tier), h, request)
    )
    scan_s, scan_cpu, rows = _timed(lambda: duckdb.connect().execute(scan_sql).fetchall())
    assert rows and (report.numerator("outpatient_visits_per_capita") or 0) > 0
    return BenchResult(
        name=f"national health report, year, {written:,} changes{label}",
        measured=Measurement(report_s, "s"),
        baseline_name="DuckDB GROUP BY scan of the same files",
        baseline=Measurement(scan_s, "s"),
        higher_is_better=False,
        target="≤1.5× one scan (issue 17)",
        extra={
            "changes": written,
            "roots": len(roots),
            "files": sum(1 for r in roots for _ in (Path(r) / tier).rglob("*.parquet")),
            "changes_per_s_report": round(written / report_s),
            "times_scan_wall": round(report_s / scan_s, 2),
            "times_scan_cpu": round(report_cpu / scan_cpu, 2),
            "report_cpu_us_per_change": round(report_cpu * 1e6 / written, 3),
            "scan_cpu_us_per_change": round(scan_cpu * 1e6 / written, 3),
        },
    )


def run(ctx: BenchContext) -> list[BenchResult]:
    """The report over the fresh store (one file per folder), then over the same store with
    every month but the last compacted (``tuyen compact``: one merged file per folder, what
    the change views read as it is)."""
    h = Hierarchy.default()
    root = ctx.workdir / "reports-store"
    total = ctx.n(BASE_RECORDS)
    tier = source_tier("national")
    t0 = time.perf_counter()
    written = generate(root, total, h, tiers=(tier,))
    gen_s = time.perf_counter() - t0
    fresh = _report_vs_scan(root, tier, h, written, " (fresh store)")
    fresh.extra["generate_s"] = round(gen_s, 2)
    config = CompactConfig(
        store_root=str(root), min_file_age_s=0, min_files=1, before_month=MONTHS[-1]
    )
    compact_s, compact_cpu, got = _timed(lambda: compact(config))
    compacted = _report_vs_scan(root, tier, h, written, " (compacted but the last month)")
    merge_cpu = compact_cpu - got.state_cpu_s  # steps 1-5: the merges (compaction before
    compacted.extra.update(  # current-state files) beside steps 6-7, the state files
        {
            "compact_s": round(compact_s, 2),
            "compact_cpu_s": round(compact_cpu, 2),
            "compact_rows_in": got.rows_in,
            "compact_merge_cpu_us_per_row": round(merge_cpu * 1e6 / max(got.rows_in, 1), 3),
            "compact_state_cpu_s": round(got.state_cpu_s, 2),
            "compact_state_rows": got.state_rows,
            "compact_state_cpu_us_per_row": round(got.state_cpu_s * 1e6 / max(got.rows_in, 1), 3),
        }
    )
    return [fresh, compacted, _several_roots(ctx, h, total, tier)]


def _several_roots(ctx: BenchContext, h: Hierarchy, total: int, tier: str) -> BenchResult:
    """As many changes at the stations of three provinces, each province in its own root
    (``StoreRoots``, as deployed), every root compacted but the last month: the report reads
    each root's current-state file and ranks the records found in two roots' files."""
    at = date(2026, 6, 1)
    codes = tuple(u.code for u in h.units("province", at) if h.stations_in(u.code, at))[:3]
    staging = ctx.workdir / "reports-staging"
    written = generate(staging, total, h, provinces=codes, tiers=(tier,))
    layout = StoreRoots.under(str(ctx.workdir / "reports-roots"))
    roots = layout.province_roots(codes)
    for code in codes:
        target = Path(layout.province_root(code)) / tier / f"province={code}"
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / tier / f"province={code}").rename(target)
    cpu = 0.0
    for root in roots:
        config = CompactConfig(
            store_root=root, min_file_age_s=0, min_files=1, before_month=MONTHS[-1]
        )
        cpu += _timed(partial(compact, config))[1]
    result = _report_vs_scan(roots, tier, h, written, f" ({len(roots)} province roots, compacted)")
    # the same report ranking every row (the state files moved aside), same run
    request = ReportRequest(kind="health", tier="national", period="2026", principal="national")
    states = [Path(r) / tier / STATE_DIR for r in roots]
    for d in states:
        d.rename(d.with_name("current-aside"))
    _, rank_cpu, _ = _timed(lambda: run_report(open_catalog(roots, tier), h, request))
    for d in states:
        d.with_name("current-aside").rename(d)
    con = open_catalog(roots, tier)
    with snapshot(con):
        row = con.execute(f"SELECT getvariable('{SNAPSHOT}')").fetchone()
        lists = list(row[0].values()) if row else []
        ranked = [  # the state rows of records also in another root's file or the last month
            con.execute(
                f"SELECT count(*) FILTER (_state) FROM ({_decide_sql(tier, rt)})"
            ).fetchone()
            for rt in MIX
        ]
    result.extra.update(
        {
            "compact_cpu_s": round(cpu, 2),
            "ranking_every_row_cpu_us_per_change": round(rank_cpu * 1e6 / written, 3),
            "state_files": sum(len(x["state"]) for x in lists),
            "state_rows_ranked_again": sum(r[0] for r in ranked if r and r[0]),
        }
    )
    return result


if __name__ == "__main__":
    import sys
    import tempfile

    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    with tempfile.TemporaryDirectory() as tmp:
        ctx = BenchContext(KafkaConnection(bootstrap="unused:9092"), Path(tmp), scale)
        for r in run(ctx):
            print(r.name, r.measured, r.baseline, f"ratio={r.ratio:.3f}", r.extra)
