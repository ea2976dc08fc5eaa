"""The portal under 20 concurrent users on demo-sized data, beside plain DuckDB.

Data: ~1 M change records (``--scale`` multiplies) at every station of the demo's three
provinces (Cao Bằng, Điện Biên, Lai Châu), written into the province, district and national
tiers (``bench_reports.generate``). The portal runs as ``tuyen portal serve`` (a separate
process, as deployed); 20 client threads, each with its own logged-in session (national and
province accounts), request a bounded mix of dashboards (national, province, regional
centre, station), indicator pages, completeness pages and CSV / Parquet downloads. Each
figure is a latency percentile; the baseline is the same month's aggregate of the same
files in plain DuckDB (one ``GROUP BY`` scan, median of 5), measured in the same run. The
portal's CPU per request comes from ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import httpx

from benchmarks.bench_reports import generate
from benchmarks.framework import BenchContext, BenchResult, Measurement
from schemas.hierarchy import Hierarchy

PROVINCES = ("04", "11", "12")
BASE_RECORDS = 1_000_000
USERS = 20
ROUNDS = 6  # each user walks its list of pages this many times
MONTH = "2026-10"
PASSWORD = "bench-password-long"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(root: Path, state: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "TUYEN_PORTAL_SESSION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "TUYEN_ACCESS_LOG_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "TUYEN_PORTAL_SECURE_COOKIES": "false",
    }
    exe = Path(sys.executable).with_name("tuyen")
    proc = subprocess.Popen(
        [str(exe), "portal", "serve", "--port", "0", "--state-dir", str(state),
         "--store-root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "portal listening on http://…/" (bounded by the process)
    found = re.search(r"(http://\S+?)/?$", line.strip())
    if not found:
        proc.kill()
        raise RuntimeError(f"portal did not start: {line}{proc.stdout.read()[-2000:]}")
    return proc, found.group(1)


def _login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    page = client.get("/login").text
    nonce = re.search(r'name="login_csrf" value="([^"]+)"', page)
    assert nonce
    r = client.post(
        "/login", data={"login_csrf": nonce.group(1), "username": name, "password": PASSWORD}
    )
    assert r.status_code == 303, r.text[:500]
    return client


def _pages(h: Hierarchy, province: str) -> dict[str, list[str]]:
    from datetime import date

    at = date(2026, 10, 31)
    district = h.children(province, at)[0].code
    station = h.children(district, at)[0].code
    q = f"?period={MONTH}"
    return {
        "dashboard": [f"/u/{province}{q}", f"/u/{district}{q}", f"/u/{station}{q}"],
        "indicator": [f"/u/{province}/i/outpatient_visits_per_capita{q}",
                      f"/u/{district}/i/station_doctors_per_10000{q}"],
        "completeness": [f"/u/{province}/completeness{q}"],
        "download": [f"/download/health/{province}.csv{q}",
                     f"/download/resources/{district}.parquet{q}"],
    }  # fmt: skip


def _baseline(root: Path) -> float:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    glob = f"{root}/province/province=*/record_type=*/month={MONTH}/*.parquet"
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        con.execute(
            f"SELECT record_type, station_code, count(*), count(DISTINCT record_id) "
            f"FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true) "
            "GROUP BY ALL"
        ).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(ctx: BenchContext) -> list[BenchResult]:
    from sinks.portal.accounts import Accounts
    from sinks.portal.db import Database

    h = Hierarchy.default()
    root = ctx.workdir / "portal-store"
    written = generate(
        root, ctx.n(BASE_RECORDS), h, provinces=PROVINCES,
        tiers=("province", "district", "national"),
    )  # fmt: skip
    state = ctx.workdir / "portal-state"
    db = Database(state / "portal.sqlite")
    accounts = Accounts(db, h)
    accounts.add("nat", PASSWORD, "national", ["analyst"])
    for p in PROVINCES:
        accounts.add(f"p{p}", PASSWORD, f"province:{p}", ["analyst"])
    db.close()
    proc, url = _start(root, state)
    try:
        # cold: the first request of each page, one user
        first = _login(url, "p04")
        cold = []
        for paths in _pages(h, "04").values():
            for path in paths:
                t0 = time.perf_counter()
                assert first.get(path).status_code == 200, path
                cold.append(time.perf_counter() - t0)
        names = ["nat" if i % 4 == 0 else f"p{PROVINCES[i % 3]}" for i in range(USERS)]
        users = [(_login(url, name), PROVINCES[i % 3]) for i, name in enumerate(names)]
        warmed: set[tuple[str, str]] = set()
        for (client, province), name in zip(users, names, strict=True):
            for paths in _pages(h, province).values():  # every distinct page once: the
                for path in paths:  # measured run then reads the cache, as a busy day does
                    if (name, path) not in warmed:
                        warmed.add((name, path))
                        client.get(path)
        times: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        lock = threading.Lock()

        def user(client: httpx.Client, province: str) -> None:
            pages = _pages(h, province)
            for _ in range(ROUNDS):
                for kind, paths in pages.items():
                    for path in paths:
                        t0 = time.perf_counter()
                        r = client.get(path)
                        dt = time.perf_counter() - t0
                        with lock:
                            times[kind].append(dt)
                            if r.status_code != 200:
                                errors.append(f"{path}: {r.status_code}")

        cpu0 = _cpu_seconds(proc.pid)
        started = time.perf_counter()
        threads = [threading.Thread(target=user, args=u) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        cpu = _cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not errors, errors[:5]
    n = sum(len(v) for v in times.values())
    base = _baseline(root)
    common: dict[str, float | str] = {
        "users": USERS,
        "requests": n,
        "requests_per_s": round(n / wall, 1),
        "portal_cpu_ms_per_request": round(1000 * cpu / n, 2),
        "change_records": written,
    }
    results = [
        BenchResult(
            name=f"portal {kind} p{int(q * 100)}, {USERS} users, {written:,} changes",
            measured=Measurement(_pct(times[kind], q), "s"),
            baseline_name="plain DuckDB GROUP BY of the month's files",
            baseline=Measurement(base, "s"),
            higher_is_better=False,
            target="p95 ≤ 0.3 s" if kind == "dashboard" and q == 0.95 else "",
            extra=common,
        )
        for kind in ("dashboard", "indicator", "completeness", "download")
        for q in (0.5, 0.95)
    ]
    results.append(
        BenchResult(
            name="portal first (uncached) page, one user: median",
            measured=Measurement(statistics.median(cold), "s"),
            baseline_name="plain DuckDB GROUP BY of the month's files",
            baseline=Measurement(base, "s"),
            higher_is_better=False,
            extra={"max_s": round(max(cold), 3), "pages": len(cold)},
        )
    )
    return results
