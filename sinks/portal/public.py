"""The public transparency page's tables: the sector's resources by province and commune.

Source: the national (pseudonymised) store's resource snapshots — staff head counts by
cadre, beds, equipment items and whether they work, essential-medicine stock-outs — each
station's last snapshot in the period, as recorded (a commune station's province is the one
on its records). No person-level figure is read or shown: only counts per station.

Every table goes through :mod:`sinks.reports.suppress` over the whole country at once (the
communes of each province add up to the province, the provinces to the nation, the cadres
to the row total), so the commune and province views of one period are consistent and no
hidden cell can be recovered from any published one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson

from schemas import codes
from sinks.reports.access import NATIONAL_CODE
from sinks.reports.suppress import DEFAULT_THRESHOLD, grouped_table, suppress

__all__ = ["MEASURES", "Measure", "PublicRow", "PublicTable", "build_tables", "snapshot_months"]

SNAPSHOTS = ("staff_snapshot", "bed_snapshot", "equipment_snapshot", "stock_snapshot")


@dataclass(frozen=True, slots=True)
class Measure:
    """One public table: where it comes from and its columns (``total``: the row total)."""

    code: str
    record_type: str
    columns: tuple[str, ...]
    total: str | None
    values: Callable[[Any], dict[str, int]]


def _staff(counts: Any) -> dict[str, int]:
    data = orjson.loads(counts) if isinstance(counts, str) else (counts or {})
    return {c: int(data.get(c) or 0) for c in codes.CADRES}


def _beds(beds_total: Any) -> dict[str, int]:
    return {"beds": int(beds_total or 0)}


def _equipment(items: Any) -> dict[str, int]:
    rows = orjson.loads(items) if isinstance(items, str) else (items or [])
    working = sum(int(i.get("working") or 0) for i in rows)
    quantity = sum(int(i.get("quantity") or 0) for i in rows)
    return {"working": working, "not_working": max(0, quantity - working)}


def _stock(items: Any) -> dict[str, int]:
    rows = orjson.loads(items) if isinstance(items, str) else (items or [])
    return {"medicines_out": sum(1 for i in rows if i.get("stock_out"))}


MEASURES: tuple[Measure, ...] = (
    Measure("staff", "staff_snapshot", tuple(codes.CADRES), "total", _staff),
    Measure("beds", "bed_snapshot", ("beds",), None, _beds),
    Measure("equipment", "equipment_snapshot", ("working", "not_working"), "quantity", _equipment),
    Measure("stockouts", "stock_snapshot", ("medicines_out",), None, _stock),
)
_PAYLOAD = {
    "staff_snapshot": "counts",
    "bed_snapshot": "beds_total",
    "equipment_snapshot": "items",
    "stock_snapshot": "items",
}


@dataclass(frozen=True, slots=True)
class PublicRow:
    level: str  # national | province | commune
    code: str
    name: str
    province: str
    values: dict[str, int | None]  # None: suppressed


@dataclass(frozen=True)
class PublicTable:
    measure: Measure
    period: str
    threshold: int
    rows: tuple[PublicRow, ...]
    suppressed: int = 0
    columns: tuple[str, ...] = field(default=())

    def national(self) -> list[PublicRow]:
        return [r for r in self.rows if r.level in {"province", "national"}]

    def province(self, code: str) -> list[PublicRow]:
        return [
            r
            for r in self.rows
            if (r.level == "commune" and r.province == code)
            or (r.level == "province" and r.code == code)
        ]

    def long_rows(self) -> list[dict[str, object]]:
        """Open-data format: one row per (unit, column); a suppressed value is empty."""
        return [
            {
                "period": self.period,
                "measure": self.measure.code,
                "level": r.level,
                "province_code": r.province,
                "unit_code": r.code,
                "unit_name": r.name,
                "column": c,
                "value": r.values[c],
                "suppressed": r.values[c] is None,
            }
            for r in self.rows
            for c in self.columns
        ]


def snapshot_months(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Months holding any resource snapshot, ascending."""
    union = " UNION ".join(f"SELECT DISTINCT period FROM {rt}" for rt in SNAPSHOTS)
    return [str(r[0]) for r in con.execute(f"SELECT period FROM ({union}) ORDER BY 1").fetchall()]


def _latest(con: duckdb.DuckDBPyConnection, rt: str, first: str, last: str) -> list[Any]:
    """Each station's last snapshot in the months (the national tier's columns: months, not
    days or times — schemas.national)."""
    return con.execute(
        f"SELECT station_code, station_name, province_code, province_name, {_PAYLOAD[rt]} "
        f"FROM {rt} WHERE period BETWEEN ? AND ? "
        "QUALIFY row_number() OVER (PARTITION BY station_code ORDER BY period DESC, "
        "as_of_month DESC, event_month DESC, record_id DESC) = 1 "
        "ORDER BY province_code, station_code",
        [first, last],
    ).fetchall()


def build_tables(
    con: duckdb.DuckDBPyConnection,
    first: str,
    last: str,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    suppress_zero: bool = False,
) -> dict[str, PublicTable]:
    """Every public table for the months ``first``..``last``, suppressed."""
    return {m.code: _table(con, m, first, last, threshold, suppress_zero) for m in MEASURES}


def _table(
    con: duckdb.DuckDBPyConnection,
    m: Measure,
    first: str,
    last: str,
    threshold: int,
    suppress_zero: bool,
) -> PublicTable:
    names: dict[str, str] = {NATIONAL_CODE: "Việt Nam"}
    group_of: dict[str, str] = {}
    leaves: dict[str, dict[str, int]] = {}
    for station, sname, province, pname, payload in _latest(con, m.record_type, first, last):
        leaves[station] = m.values(payload)
        group_of[station] = province
        names[station] = sname or station
        names[province] = pname or province
    values, equations = grouped_table(
        leaves, group_of, m.columns, total_column=m.total, grand=NATIONAL_CODE
    )
    result = suppress(values, equations, threshold=threshold, suppress_zero=suppress_zero)
    shown = result.published(values)
    cols = (*m.columns, *([m.total] if m.total else []))

    def row(level: str, code: str, province: str) -> PublicRow:
        return PublicRow(
            level, code, names.get(code, code), province, {c: shown[(code, c)] for c in cols}
        )

    rows = [row("national", NATIONAL_CODE, NATIONAL_CODE)] if leaves else []
    for p in sorted(set(group_of.values())):
        rows.append(row("province", p, p))
        rows += [row("commune", s, p) for s in sorted(leaves) if group_of[s] == p]
    label = last if first == last else f"{first}..{last}"
    return PublicTable(m, label, threshold, tuple(rows), len(result.suppressed), cols)
