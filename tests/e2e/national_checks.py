"""What an analyst with national credentials can read after a simulated run: the checks of
issue 12 ("Done when") over the national store (every file under ``<root>/national``; the DLQ
is the operators' quarantine, not the national store).

- :func:`published_identifiers`: every name, health id, citizen id, phone, address and exact
  birth date the stations published (valid and bad events alike);
- :func:`national_values`: every value of every file of the national store (Parquet read as
  tables: its pages are compressed, a byte scan would see nothing);
- :func:`linkable_columns`: the national tier joined to a province tier on every column that
  could carry a shared key — event ids, record ids, keys, health ids, exact times, seqs;
- :func:`smallest_qi_class`: k measured over the national person-level data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from schemas.registry import RecordType

__all__ = [
    "leaks",
    "linkable_columns",
    "national_values",
    "published_identifiers",
    "smallest_qi_class",
    "timestamp_columns",
]

_PERSONAL = (
    "health_id",
    "mother_health_id",
    "child_health_id",
    "citizen_id",
    "full_name",
    "phone",
    "street_address",
)
#: report_submission's received_date is the day a station's report arrived (a station's
#: act, kept for the timeliness indicators): it may equal some newborn's birth day.
_STATION_DAYS = {("report_submission", "received_date")}


def published_identifiers(values: Iterable[bytes | None]) -> tuple[set[str], set[str]]:
    """(identifiers, exact birth dates) in the published message values."""
    idents: set[str] = set()
    births: set[str] = set()
    for raw in values:
        try:
            msg = json.loads(raw or b"")
        except ValueError:
            continue
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(data, dict):
            continue
        for name in _PERSONAL:
            v = data.get(name)
            if isinstance(v, str) and len(v.strip()) >= 6:
                idents.add(v.strip())
        if msg.get("record_type") in {"person", "birth"}:
            b = data.get("birth_date")
            if isinstance(b, str) and len(b) == 10:
                births.add(b)
    return idents, births


_DIGITS = re.compile(r"\d{9,}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def leaks(text: str, idents: set[str], births: set[str]) -> bool:
    """``text`` is, or holds as a digit run or a day, a published identifier or birth date."""
    if text.strip() in idents or text in births:
        return True
    return any(d in idents for d in _DIGITS.findall(text)) or any(
        d in births for d in _DAY.findall(text)
    )


def _flatten(v: Any) -> Iterator[str]:
    if v is None:
        return
    if isinstance(v, dict):
        for x in v.values():
            yield from _flatten(x)
    elif isinstance(v, list | tuple):
        for x in v:
            yield from _flatten(x)
    elif isinstance(v, datetime | date):
        yield v.isoformat()
    else:
        yield str(v)


def national_values(national: Path) -> Iterator[tuple[str, str, str]]:
    """(file, column, value) of every value in the national store."""
    for path in sorted(p for p in national.rglob("*") if p.is_file()):
        rel = str(path.relative_to(national))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            rt = next(
                (
                    r.value
                    for r in RecordType
                    if f"record_type={r.value}/" in rel or f"/{r.value}/" in f"/{rel}"
                ),
                "",
            )
            for name in table.column_names:
                if (rt, name) in _STATION_DAYS:
                    continue
                for v in table.column(name).to_pylist():
                    for text in _flatten(v):
                        yield rel, name, text
        else:
            yield rel, "", path.read_text(errors="replace")


def timestamp_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Columns of the national catalog's views typed as an exact time."""
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE data_type LIKE 'TIMESTAMP%' AND table_schema = 'main'"
    ).fetchall()
    # not record-level: the dead letters (redacted for analysts), the live aggregates and the
    # sign-off ledger (approvers' decisions on station-months: no person in it)
    skip = ("dlq", "aggregates_live", "signoff")
    return [f"{t}.{c}" for t, c in rows if not t.startswith(skip)]


_KEYS = ("event_id", "record_id", "record_key")


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    return [str(c) for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {view})").fetchall()]


def _distinct(con: duckdb.DuckDBPyConnection, view: str, col: str) -> set[str]:
    got = con.execute(f'SELECT DISTINCT CAST("{col}" AS VARCHAR) FROM {view}').fetchall()
    return {str(v) for (v,) in got if v is not None}


def _keylike(col: str, *, times: bool = False) -> bool:
    more = times and (col.endswith("_time") or col == "signer")
    return col in _KEYS or col.endswith("health_id") or col.endswith("_seq") or more


def linkable_columns(
    national: duckdb.DuckDBPyConnection, province: duckdb.DuckDBPyConnection
) -> dict[str, int]:
    """``rt.national_column=province_column`` → number of equal values, for every key-like
    column of the national tier against every key, id, seq, signer and time of the province
    tier (only the pairs that match at least once)."""
    out: dict[str, int] = {}
    for rt in RecordType:
        view = f'"{rt.value}_changes"'
        nat = {c: _distinct(national, view, c) for c in _columns(national, view) if _keylike(c)}
        prov = {
            c: _distinct(province, view, c)
            for c in _columns(province, view)
            if _keylike(c, times=True)
        }
        for col, vals in nat.items():
            for c, pv in prov.items():
                if n := len(vals & pv):
                    out[f"{rt.value}.{col}={c}"] = n
    return out


def smallest_qi_class(con: duckdb.DuckDBPyConnection) -> tuple[int | None, int, int]:
    """(smallest class, persons released, persons suppressed) of the national person view's
    quasi-identifiers (province, age band, birth month); suppressed rows (NULL band) apart."""
    cols = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE person)").fetchall()}
    assert not cols & {"sex", "ethnicity", "birth_date", "residence_commune"}, cols
    smallest = con.execute(
        "SELECT min(n) FROM (SELECT count(*) AS n FROM person WHERE age_band IS NOT NULL "
        "GROUP BY province_code, age_band, birth_month)"
    ).fetchall()[0][0]
    released, suppressed = con.execute(
        "SELECT count(*) FILTER (WHERE age_band IS NOT NULL), "
        "count(*) FILTER (WHERE age_band IS NULL) FROM person"
    ).fetchall()[0]
    return (None if smallest is None else int(smallest)), int(released), int(suppressed)
