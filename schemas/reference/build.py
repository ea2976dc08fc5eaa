"""Rebuild the committed hierarchy reference data. Not needed at runtime.

    .venv/bin/python -m schemas.reference.build            # download, extract, derive
    .venv/bin/python -m schemas.reference.build --derive-only   # re-derive from the extracts

Steps:
1. ``pip download --no-deps vietnam-provinces==V`` for 0.6.0 and 2025.10.1 into a throwaway
   folder under /tmp, check each wheel's sha256 against the pinned value, and read
   ``vietnam_provinces/data/nested-divisions.json`` from it (JSON only; the package is never
   imported or installed into the project).
2. Extract compact CSVs with GSO codes and names: ``vn_units_2025-01-04.csv.gz`` (0.6.0) and
   ``vn_units_2025-10-18.csv.gz`` (2025.10.1).
3. Derive the effective-dated hierarchy in the runtime format (``units.csv.gz``,
   ``links.csv.gz``, ``population.csv.gz``) from the extracts plus
   ``province_merger_2025.csv`` and ``province_population.csv``. See docs/hierarchy.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from schemas.hierarchy.io import write_links, write_population, write_units
from schemas.hierarchy.model import Link, Tier, Unit
from schemas.hierarchy.population import PopulationRow, apportion, hash_weight

HERE = Path(__file__).resolve().parent
R = date(2025, 7, 1)  # first day of the 2025 structure
PACKAGE = "vietnam-provinces"
WHEELS = {
    "0.6.0": "4b5772870efdcb7c58a64fbdc0e0c9ce497e67017a0c189dff99582ddadb7815",
    "2025.10.1": "1693dece496b1e04e2b637a3dd79a87a22666e13c91c51cf06dc27e482987f57",
}
OLD_FILE = HERE / "vn_units_2025-01-04.csv.gz"
NEW_FILE = HERE / "vn_units_2025-10-18.csv.gz"
OLD_COLUMNS = (
    *("province_code", "province_name", "district_code", "district_name"),
    *("ward_code", "ward_name"),
)
NEW_COLUMNS = (
    *("province_code", "province_name", "province_kind"),
    *("ward_code", "ward_name", "ward_kind"),
)
DISTRICT_PREFIXES = ("Thành phố ", "Thị xã ", "Huyện ", "Quận ")
WARD_PREFIXES = ("Thị trấn ", "Phường ", "Xã ", "Đặc khu ")
PROVINCE_PREFIXES = ("Thành phố ", "Tỉnh ")

Json = Any


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(version: str, workdir: Path) -> Json:
    """Download the wheel, check its sha256, return its nested-divisions.json."""
    dest = workdir / version
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--quiet", "-d", str(dest), f"{PACKAGE}=={version}"]
    subprocess.run(cmd, check=True)
    (wheel,) = dest.glob("*.whl")
    digest = _sha256(wheel)
    if digest != WHEELS[version]:
        raise SystemExit(f"{wheel.name}: sha256 {digest} != pinned {WHEELS[version]}")
    _log(f"{wheel.name} sha256={digest}")
    with zipfile.ZipFile(wheel) as zf:
        return json.loads(zf.read("vietnam_provinces/data/nested-divisions.json"))


def _write_csv(path: Path, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0))


def _read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def p_code(p: Json) -> str:
    return f"{p['code']:02d}"


def extract(old: Json, new: Json) -> None:
    rows: list[tuple[str, ...]] = []
    for p in old:
        for d in p["districts"]:
            head = (f"{p['code']:02d}", p["name"], f"{d['code']:03d}", d["name"])
            wards = d["wards"] or [None]  # keep districts without communes (islands)
            for w in wards:
                rows.append(head + ((f"{w['code']:05d}", w["name"]) if w else ("", "")))
    _write_csv(OLD_FILE, OLD_COLUMNS, rows)
    new_rows: list[tuple[str, ...]] = [
        (
            p_code(p),
            p["name"],
            p["division_type"],
            f"{w['code']:05d}",
            w["name"],
            w["division_type"],
        )
        for p in new
        for w in p["wards"]
    ]
    _write_csv(NEW_FILE, NEW_COLUMNS, new_rows)
    _log(f"extracted {len(rows)} + {len(new_rows)} rows")


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _kind(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return prefix.strip().lower()
    return ""


def derive() -> tuple[list[Unit], list[Link], list[PopulationRow]]:
    old_rows = _read_csv(OLD_FILE)
    new_rows = _read_csv(NEW_FILE)
    merger = {
        r["old_province_code"]: r["new_province_code"]
        for r in _read_csv(HERE / "province_merger_2025.csv")
    }
    pop2019 = {
        r["old_province_code"]: int(r["population_2019"])
        for r in _read_csv(HERE / "province_population.csv")
    }

    old_prov: dict[str, str] = {}
    old_dist: dict[str, tuple[str, str]] = {}  # district → (province, name)
    old_ward: dict[str, tuple[str, str]] = {}  # ward → (district, name)
    for r in old_rows:
        old_prov[r["province_code"]] = r["province_name"]
        old_dist[r["district_code"]] = (r["province_code"], r["district_name"])
        if r["ward_code"]:
            old_ward[r["ward_code"]] = (r["district_code"], r["ward_name"])
    new_prov: dict[str, tuple[str, str]] = {}
    new_ward: dict[str, tuple[str, str, str]] = {}  # ward → (province, name, kind)
    for r in new_rows:
        new_prov[r["province_code"]] = (r["province_name"], r["province_kind"])
        new_ward[r["ward_code"]] = (r["province_code"], r["ward_name"], r["ward_kind"])
    assert set(merger) == set(old_prov) and set(merger.values()) == set(new_prov)
    assert set(pop2019) == set(old_prov)

    # Regional centre of each new commune: the old district that held its code; for the 11
    # new codes, the old district of the same name in the new province, else the old district
    # of the numerically nearest old commune code in the new province (ties: lower code).
    old_wards_by_newprov: dict[str, list[int]] = defaultdict(list)
    for w, (d, _) in old_ward.items():
        old_wards_by_newprov[merger[old_dist[d][0]]].append(int(w))
    centre_of: dict[str, str] = {}
    for w, (np_, wname, _) in sorted(new_ward.items()):
        if w in old_ward:
            d = old_ward[w][0]
            if merger[old_dist[d][0]] != np_:
                raise SystemExit(f"commune {w} moved outside its province's merger group")
        else:
            bare = _strip(wname, WARD_PREFIXES).casefold()
            same = [
                d
                for d, (op, dname) in old_dist.items()
                if merger[op] == np_ and _strip(dname, DISTRICT_PREFIXES).casefold() == bare
            ]
            if len(same) == 1:
                d = same[0]
            else:
                near = min(old_wards_by_newprov[np_], key=lambda c: (abs(c - int(w)), c))
                d = old_ward[f"{near:05d}"][0]
            _log(f"new code {w} {wname}: centre from old district {d} {old_dist[d][1]}")
        centre_of[w] = d
    centres = sorted(set(centre_of.values()))
    bare_names: dict[tuple[str, str], int] = defaultdict(int)
    for d in centres:
        op, dname = old_dist[d]
        bare_names[(merger[op], _strip(dname, DISTRICT_PREFIXES))] += 1

    units: list[Unit] = [Unit(Tier.NATIONAL, "VN", "Việt Nam", "quốc gia")]
    links: list[Link] = []
    for p, pname in sorted(old_prov.items()):
        kind = "thành phố trung ương" if pname.startswith("Thành phố") else "tỉnh"
        if p in new_prov:
            nname, nkind = new_prov[p]
            units.append(Unit(Tier.PROVINCE, p, pname, kind, None, R))
            units.append(Unit(Tier.PROVINCE, p, nname, nkind, R, None))
            links.append(Link(p, "VN"))
        else:
            units.append(Unit(Tier.PROVINCE, p, pname, kind, None, R, merger[p]))
            links.append(Link(p, "VN", None, R))
    for p, (nname, nkind) in sorted(new_prov.items()):
        if p not in old_prov:
            units.append(Unit(Tier.PROVINCE, p, nname, nkind, R, None))
            links.append(Link(p, "VN", R, None))
    centre_set = set(centres)
    for d, (op, dname) in sorted(old_dist.items()):
        succ = f"KV{d}" if d in centre_set else merger[op]
        units.append(Unit(Tier.DISTRICT, d, dname, _kind(dname, DISTRICT_PREFIXES), None, R, succ))
        links.append(Link(d, op, None, R))
    for d in centres:
        op, dname = old_dist[d]
        bare = _strip(dname, DISTRICT_PREFIXES)
        name = f"TTYT khu vực {bare}"
        if bare_names[(merger[op], bare)] > 1:
            name += f" ({_strip(old_prov[op], PROVINCE_PREFIXES)})"
        units.append(Unit(Tier.DISTRICT, f"KV{d}", name, "khu vực", R, None))
        links.append(Link(f"KV{d}", merger[op], R, None))
    for w, (d, wname) in sorted(old_ward.items()):
        kind = _kind(wname, WARD_PREFIXES)
        if w in new_ward:
            _, nname, nkind = new_ward[w]
            units.append(Unit(Tier.STATION, w, wname, kind, None, R))
            units.append(Unit(Tier.STATION, w, nname, nkind, R, None))
        else:
            succ = f"KV{d}" if d in centre_set else merger[old_dist[d][0]]
            units.append(Unit(Tier.STATION, w, wname, kind, None, R, succ))
        links.append(Link(w, d, None, R))
    for w, (_np, nname, nkind) in sorted(new_ward.items()):
        if w not in old_ward:
            units.append(Unit(Tier.STATION, w, nname, nkind, R, None))
        links.append(Link(w, f"KV{centre_of[w]}", R, None))

    # Population: 2019 province totals apportioned over communes (largest remainder, weights
    # from a hash of the commune code). New provinces get the sum of their members' totals.
    population: list[PopulationRow] = []
    wards_of_old: dict[str, list[str]] = defaultdict(list)
    for w, (d, _) in old_ward.items():
        wards_of_old[old_dist[d][0]].append(w)
    for p, total in sorted(pop2019.items()):
        parts = apportion(total, {w: hash_weight(w) for w in wards_of_old[p]})
        population += [PopulationRow(w, n, None, R) for w, n in sorted(parts.items())]
    new_totals: dict[str, int] = defaultdict(int)
    for p, total in pop2019.items():
        new_totals[merger[p]] += total
    wards_of_new: dict[str, list[str]] = defaultdict(list)
    for w, (np_, _, _) in new_ward.items():
        wards_of_new[np_].append(w)
    for p, total in sorted(new_totals.items()):
        parts = apportion(total, {w: hash_weight(w) for w in wards_of_new[p]})
        population += [PopulationRow(w, n, R, None) for w, n in sorted(parts.items())]
    return units, links, population


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--derive-only", action="store_true", help="skip download and extraction")
    args = ap.parse_args(argv)
    if not args.derive_only:
        with tempfile.TemporaryDirectory(prefix="tuyen-vp-") as tmp:
            old, new = (fetch(v, Path(tmp)) for v in WHEELS)
            extract(old, new)
    units, links, population = derive()
    write_units(HERE / "units.csv.gz", units)
    write_links(HERE / "links.csv.gz", links)
    write_population(HERE / "population.csv.gz", population)
    for name in ("units.csv.gz", "links.csv.gz", "population.csv.gz", OLD_FILE.name, NEW_FILE.name):
        path = HERE / name
        _log(f"{name}: {path.stat().st_size} bytes sha256={_sha256(path)}")
    _log(f"units={len(units)} links={len(links)} population_rows={len(population)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
