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
   ``province_merger_2025.csv``, the official commune conversion table
   (``commune_merger_2025.csv.gz``) and the 2019 census by commune and by district and age
   (``commune_population_2019.csv.gz``, ``commune_population_2019_district_only.csv``,
   ``district_age_2019.csv.gz``). See docs/hierarchy.md and README.md here.
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
from schemas.hierarchy.population import PopulationRow, apportion

HERE = Path(__file__).resolve().parent
R = date(2025, 7, 1)  # first day of the 2025 structure
CENSUS_DAY = date(2019, 4, 1)  # reference date of the 2019 census counts
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
    targets = commune_targets(old_ward, new_ward)
    for w, (d, wname) in sorted(old_ward.items()):
        kind = _kind(wname, WARD_PREFIXES)
        if w in new_ward:
            _, nname, nkind = new_ward[w]
            units.append(Unit(Tier.STATION, w, wname, kind, None, R))
            units.append(Unit(Tier.STATION, w, nname, nkind, R, None))
        else:  # the new commune that took most of it, else the regional centre
            main = successor_commune(targets.get(w, ()))
            succ = main or (f"KV{d}" if d in centre_set else merger[old_dist[d][0]])
            units.append(Unit(Tier.STATION, w, wname, kind, None, R, succ))
        links.append(Link(w, d, None, R))
    for w, (_np, nname, nkind) in sorted(new_ward.items()):
        if w not in old_ward:
            units.append(Unit(Tier.STATION, w, nname, nkind, R, None))
        links.append(Link(w, f"KV{centre_of[w]}", R, None))

    population = _population(old_ward, old_dist, new_ward, centre_of)
    return units, links, population


# --- the official commune conversion and the census --------------------------------------

#: (new commune, weight, NSO row number): where a part of an old commune went
Target = tuple[str, int, int]


def commune_targets(
    old_ward: dict[str, tuple[str, str]], new_ward: dict[str, tuple[str, str, str]]
) -> dict[str, list[Target]]:
    """Old commune → the new communes that received it, from the NSO conversion table.

    Codes: the old side as reconciled with 0.6.0, the new side as in vietnam-provinces
    2025.10.1 (the codes of the hierarchy). Weights share the old commune's population: a
    row moving "the whole population" takes all of it; a row moving only area
    ("một phần diện tích") none, unless every row is area-only; every other row an equal
    share. Old communes the table does not list (merged or recoded between January and June
    2025) go to the new commune of the numerically nearest listed old code of the same old
    district, an estimate.
    """
    raw: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for r in _read_csv(HERE / "commune_merger_2025.csv.gz"):
        old, new = r["old_ward_code_0_6_0"], r["new_ward_code_vp_2025_10_1"]
        if old in old_ward and new in new_ward:
            raw[old].append((new, r["kind_raw"].lower(), int(r["source_row"])))
    out: dict[str, list[Target]] = {}
    for old, rows in raw.items():
        whole = [x for x in rows if "toàn bộ dân số" in x[1]]
        if whole:
            out[old] = [(n, 1, row) for n, _k, row in whole]
            continue
        area_only = ["diện tích" in k and "dân số" not in k for _n, k, _r in rows]
        weights = [0 if a else 1 for a in area_only] if not all(area_only) else [1] * len(rows)
        out[old] = [(n, w, row) for (n, _k, row), w in zip(rows, weights, strict=True)]
    listed = sorted(out)
    for old, (d, _name) in old_ward.items():
        if old in out or old in new_ward:
            continue
        same = [o for o in listed if old_ward[o][0] == d]
        if same:
            near = min(same, key=lambda o: (abs(int(o) - int(old)), o))
            out[old] = [(successor_commune(out[near]) or out[near][0][0], 1, 0)]
            _log(f"old commune {old} not in the conversion table: its population goes with {near}")
    return out


def successor_commune(targets: Sequence[Target]) -> str | None:
    """The one successor of a closed commune: its heaviest target, ties to the NSO row order."""
    if not targets:
        return None
    return min(targets, key=lambda t: (-t[1], t[2]))[0]


def _shares(total: int, targets: Sequence[Target]) -> dict[str, int]:
    weights: dict[str, int] = defaultdict(int)
    for new, w, _row in targets:
        weights[new] += w
    return apportion(total, dict(weights))


def _population(
    old_ward: dict[str, tuple[str, str]],
    old_dist: dict[str, tuple[str, str]],
    new_ward: dict[str, tuple[str, str, str]],
    centre_of: dict[str, str],
) -> list[PopulationRow]:
    """Per station: the 2019 census count of its commune, with two target groups from the
    district's age structure, as of the census day (``reference_date``): ``under_1`` = a fifth
    of the district's 0-4 share (the census has no single years), ``women_15_49`` = half of
    its 15-49 share (it has no sex). New communes: the sum of what they received."""
    census = {r["ward_code"]: int(r["population_2019"]) for r in _read_csv_gz("commune_population")}
    age: dict[str, tuple[int, int, int]] = {}
    for r in _read_csv(HERE / "district_age_2019.csv.gz"):
        age[r["district_code"]] = (
            int(r["population_2019"]),
            int(r["age_0_4"]),
            int(r["age_15_49"]),
        )
    missing = sorted(set(old_ward) - set(census))
    if missing:
        raise SystemExit(f"communes without a census count: {missing[:5]}")

    def groups(ward: str) -> tuple[int, int, int]:
        total, a04, a1549 = age.get(old_ward[ward][0], (0, 0, 0))
        n = census[ward]
        if not total:
            return n, 0, 0
        return n, round(n * a04 / total / 5), round(n * a1549 / total / 2)

    rows = []
    new_counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    targets = commune_targets(old_ward, new_ward)
    for w in sorted(old_ward):
        counts = groups(w)
        rows.append(PopulationRow(w, counts[0], None, R, counts[1], counts[2], CENSUS_DAY))
        # a commune that kept its code and is not in the table keeps its people
        moved = targets.get(w, [(w, 1, 0)] if w in new_ward else [])
        for i, n in enumerate(counts):
            for new, part in _shares(n, moved).items():
                new_counts[new][i] += part
    # island districts without a commune before 2025 became special zones (đặc khu)
    island = {r["district_code"]: int(r["population_2019"]) for r in _district_only()}
    for w, (_np, name, kind) in new_ward.items():
        d = centre_of[w]
        if kind == "đặc khu" and d in island and w not in old_ward:
            total, a04, a1549 = age.get(d, (0, 0, 0))
            n = island[d]
            new_counts[w][0] += n
            if total:
                new_counts[w][1] += round(n * a04 / total / 5)
                new_counts[w][2] += round(n * a1549 / total / 2)
            _log(f"special zone {w} {name}: {n} people of island district {d}")
    for w in sorted(new_ward):
        n, u1, f1549 = new_counts.get(w, [0, 0, 0])
        rows.append(PopulationRow(w, n, R, None, u1, f1549, CENSUS_DAY))
    _log(f"population: 2019 old total {sum(census[w] for w in old_ward)}, "
         f"new total {sum(c[0] for c in new_counts.values())}")  # fmt: skip
    return rows


def _read_csv_gz(stem: str) -> list[dict[str, str]]:
    return _read_csv(HERE / f"{stem}_2019.csv.gz")


def _district_only() -> list[dict[str, str]]:
    return _read_csv(HERE / "commune_population_2019_district_only.csv")


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
