"""The k-anonymous release of the persons' quasi-identifiers to the national tier.

The national stream (``streams.national``) carries no quasi-identifier of a person beyond the
province: no sex, ethnicity, birth date or commune. What the national indicators need of them —
the age, and for the immunisation cohorts the birth month of a young child — reaches the
national store only through this release: a table ``<root>/national/person_qi/
province=<P>/person_qi.parquet`` with one row per person (``record_key`` = the person's
pseudonym, ``province_code``, ``age_band``, ``birth_month``, ``level``, ``released_on``), built
from the province tiers' current person records by whoever holds the pseudonym key (the stream
operator) with ``tuyen national release``, and replaced whole at each run.

**The guarantee** (k = 5 by default): in every release file, every combination of the
quasi-identifiers kept — (province, age band) — that is not suppressed covers at least k
persons. Generalisation (local recoding), computed exactly over the whole current data, not
over a stream:

- level 0: the age band at the release date — the birth month (``YYYY-MM``) for a child under
  five (the immunisation indicators count doses "at most 11 months after the birth month"),
  else five years (``05-09`` … ``75-79``, ``80+``);
- level 1: the rows of every level-0 combination with fewer than k persons get a wide band
  (``00-04``, ``05-19``, ``20-39``, ``40-59``, ``60+``);
- level 2: the rows of every level-1 combination still under k are **suppressed** (age band
  and birth month NULL; the province stays, as on every national row); their number is
  reported (``ReleaseReport.suppressed``) and written beside the release (``_release.json``).

The same function re-generalises what a purge leaves (``sinks.purge``): removing a person can
only shrink a combination, whose remaining rows then move up a level. Sex and ethnicity are not
released: no national indicator uses them (docs/reports.md), and each would multiply the
combinations a rare person stands out in.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date

import duckdb
import pyarrow as pa

from sinks.columns import PERSON_QI, arrow_schema
from sinks.erasure import Register
from sinks.store import Store, safe_value

__all__ = [
    "DEFAULT_K",
    "QI_DIR",
    "QiRow",
    "ReleaseReport",
    "age_band",
    "generalise",
    "read_release",
    "release_person_qi",
    "widen",
    "write_release",
]

logger = logging.getLogger(__name__)

DEFAULT_K = 5
#: Where the release lives, under the national tier's folder.
QI_DIR = "national/person_qi"
_REPORT = "_release.json"
_UNDER_YEARS = 5  # children under five keep their birth month
_WIDE = ((5, "05-19"), (20, "20-39"), (40, "40-59"), (60, "60+"))


@dataclass(frozen=True, slots=True)
class QiRow:
    """One person's released quasi-identifiers at a generalisation ``level``."""

    record_key: str
    province_code: str
    age_band: str | None
    level: int

    @property
    def birth_month(self) -> str | None:
        """The birth month, when the band is one (level 0, a child under five)."""
        band = self.age_band
        return band if band is not None and len(band) == 7 and band[4] == "-" else None


def age_band(birth: date, on: date) -> str:
    """The level-0 band of a person born on ``birth``, at ``on``."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    if years < _UNDER_YEARS:
        return birth.isoformat()[:7]
    if years >= 80:
        return "80+"
    low = years - years % 5
    return f"{low:02d}-{low + 4:02d}"


def widen(band: str) -> str:
    """The level-1 band containing the level-0 ``band``."""
    if len(band) == 7 and band[4] == "-":  # a birth month: under five
        return "00-04"
    low = 80 if band == "80+" else int(band[:2])
    wide = "00-04"
    for start, name in _WIDE:
        if low >= start:
            wide = name
    return wide


def generalise(rows: Iterable[QiRow], k: int) -> list[QiRow]:
    """Rows whose every (province, age band) combination at each level covers ≥ ``k`` rows,
    moving the rows of a smaller one up a level (level 2: suppressed). Idempotent; accepts
    rows already at mixed levels (a release after a purge)."""
    current = list(rows)
    for level in (0, 1):
        sizes = Counter((r.province_code, r.age_band) for r in current if r.level == level)
        moved = []
        for r in current:
            if r.level == level and sizes[(r.province_code, r.age_band)] < k:
                band = widen(r.age_band) if level == 0 and r.age_band is not None else None
                moved.append(QiRow(r.record_key, r.province_code, band, level + 1))
            else:
                moved.append(r)
        current = moved
    return sorted(current, key=lambda r: (r.province_code, r.record_key))


@dataclass
class ReleaseReport:
    """What one release wrote."""

    k: int
    released_on: str
    persons: int = 0
    by_level: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    provinces: dict[str, int] = field(default_factory=dict)
    smallest_class: int | None = None


def _report(rows: list[QiRow], k: int, on: date) -> ReleaseReport:
    levels = Counter(str(r.level) for r in rows)
    classes = Counter((r.province_code, r.age_band) for r in rows if r.level < 2)
    return ReleaseReport(
        k=k,
        released_on=on.isoformat(),
        persons=len(rows),
        by_level=dict(sorted(levels.items())),
        suppressed=levels.get("2", 0),
        provinces=dict(sorted(Counter(r.province_code for r in rows).items())),
        smallest_class=min(classes.values()) if classes else None,
    )


def _table(rows: list[QiRow], on: date) -> pa.Table:
    schema = arrow_schema(PERSON_QI)
    return pa.Table.from_pydict(
        {
            "record_key": [r.record_key for r in rows],
            "province_code": [r.province_code for r in rows],
            "age_band": [r.age_band for r in rows],
            "birth_month": [r.birth_month for r in rows],
            "level": [r.level for r in rows],
            "released_on": [on] * len(rows),
        },
        schema=schema,
    )


def write_release(store: Store, rows: list[QiRow], k: int, on: date) -> ReleaseReport:
    """Replace the release under ``store`` with ``rows`` (one file per province, each written
    atomically; files of provinces no longer present removed afterwards) and its report."""
    by_province: dict[str, list[QiRow]] = {}
    for r in rows:
        by_province.setdefault(r.province_code, []).append(r)
    written = set()
    for prov, prov_rows in sorted(by_province.items()):
        path = store.path(QI_DIR, f"province={safe_value(prov)}", "person_qi.parquet")
        store.write_table(path, _table(prov_rows, on))
        written.add(path)
    for info in store.list_files(QI_DIR):
        if info.path not in written:
            store.delete(info.path)
    report = _report(rows, k, on)
    store.write_bytes(
        store.path(QI_DIR, _REPORT), json.dumps(asdict(report), indent=2, sort_keys=True).encode()
    )
    logger.info(
        "person release written persons=%d suppressed=%d levels=%s smallest_class=%s k=%d",
        report.persons,
        report.suppressed,
        report.by_level,
        report.smallest_class,
        k,
    )
    return report


def read_release(store: Store, province: str | None = None) -> list[QiRow]:
    """The rows of the current release (of one province)."""
    parts = (QI_DIR,) if province is None else (QI_DIR, f"province={safe_value(province)}")
    files = [i.path for i in store.list_files(*parts)]
    if not files:
        return []
    con = duckdb.connect()
    try:
        got = con.execute(
            "SELECT record_key, province_code, age_band, level FROM read_parquet(?) ORDER BY ALL",
            [[store.glob_uri(f[len(store.base) + 1 :]) for f in files]],
        ).fetchall()
    finally:
        con.close()
    return [QiRow(str(a), str(b), None if c is None else str(c), int(d)) for a, b, c, d in got]


def release_person_qi(
    source: duckdb.DuckDBPyConnection,
    national_root: str,
    pseudonym: Callable[[str], str],
    *,
    k: int = DEFAULT_K,
    on: date,
) -> ReleaseReport:
    """Build and write the release from ``source``, a catalog of the record-level tier (its
    ``person`` view: the current person records of every province it reaches), at ``on``.
    ``pseudonym`` is the worker's (``Pseudonymiser(key).pseudonym``): the same key."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    got = source.execute(
        "SELECT health_id, province_code, CAST(birth_date AS DATE) FROM person "
        "WHERE health_id IS NOT NULL AND birth_date IS NOT NULL"
    ).fetchall()
    rows = [QiRow(pseudonym(str(hid)), str(prov), age_band(born, on), 0) for hid, prov, born in got]
    store = Store.open(national_root)
    register = Register(store)  # erased persons left out before generalising (sinks.erasure)
    erased = register.read().pseudonyms
    while True:
        kept = [r for r in rows if r.record_key not in erased]
        report = write_release(store, generalise(kept, k), k, on)
        now = register.read().pseudonyms  # a purge registered meanwhile: build it again
        if now == erased:
            return report
        erased = now
