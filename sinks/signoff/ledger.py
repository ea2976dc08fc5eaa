"""What the sign-off ledger says: the approval in force per station-month and the lock per
province-month, from the catalog's ``signoff`` view.

Rules (the order is the broker's: receive time, then partition offset; one province-month's
decisions share a partition):

- a province-month is locked from its first ``lock`` on; decisions on it after the lock do
  not count (the API refuses them; the ledger ignores them if they come anyway);
- a station-month is approved from an ``approve`` until a later ``send_back``; the approval
  in force is the last one before the lock (or the last one, when unlocked);
- "as submitted" figures are each station-month's figures as they stood when the approval in
  force reached the broker (its ``received_time``): see :func:`asof_views`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from schemas.registry import RecordType
from sinks.columns import tier_columns

__all__ = ["CUTOFFS", "Ledger", "StationMonth", "asof_views", "drop_asof_views", "read_ledger"]

CUTOFFS = "_tuyen_cutoffs"


@dataclass(frozen=True, slots=True)
class StationMonth:
    """The sign-off state of one station-month."""

    station: str
    period: str
    province: str
    approved_at: datetime | None = None
    approved_by: str | None = None
    sent_back_at: datetime | None = None
    sent_back_reason: str | None = None


@dataclass
class Ledger:
    """Station-months with a decision, and the locks, for some months."""

    stations: dict[tuple[str, str], StationMonth] = field(default_factory=dict)
    locks: dict[tuple[str, str], tuple[datetime, str]] = field(default_factory=dict)

    def approvals(self) -> dict[tuple[str, str], float]:
        """(station, month) → when the approval in force reached the broker (epoch s)."""
        return {
            k: v.approved_at.timestamp()
            for k, v in self.stations.items()
            if v.approved_at is not None
        }

    def lock_times(self) -> dict[tuple[str, str], float]:
        """(province, month) → when its lock reached the broker (epoch seconds)."""
        return {k: t.timestamp() for k, (t, _by) in self.locks.items()}


def read_ledger(
    con: duckdb.DuckDBPyConnection,
    months: Sequence[str],
    provinces: Iterable[str] | None = None,
) -> Ledger:
    """The ledger's state for ``months`` (optionally only ``provinces``)."""
    ledger = Ledger()
    if not months:
        return ledger
    where = "period BETWEEN $first AND $last"
    params: dict[str, object] = {"first": min(months), "last": max(months)}
    wanted = sorted(set(provinces)) if provinces is not None else None
    if wanted is not None:
        if not wanted:
            return ledger
        where += " AND province IN (" + ", ".join(f"'{p}'" for p in wanted) + ")"
    rows = con.execute(
        "SELECT action, period, province, station, approver, reason, received_time "
        f"FROM signoff WHERE {where} "
        "ORDER BY received_time, kafka_partition, kafka_offset",
        params,
    ).fetchall()
    for action, period, province, _station, approver, _reason, received in rows:
        if action == "lock" and (province, period) not in ledger.locks:
            ledger.locks[(province, period)] = (received, approver)
    for action, period, province, station, approver, reason, received in rows:
        if action == "lock" or station is None:
            continue
        lock = ledger.locks.get((province, period))
        if lock is not None and received > lock[0]:
            continue
        cur = ledger.stations.get((station, period)) or StationMonth(station, period, province)
        if action == "approve":
            cur = StationMonth(station, period, province, received, approver, None, None)
        elif action == "send_back":
            cur = StationMonth(station, period, province, None, None, received, reason)
        ledger.stations[(station, period)] = cur
    return ledger


def asof_views(con: duckdb.DuckDBPyConnection, ledger: Ledger, first: str, last: str) -> None:
    """Temporary views of this connection, one current-state view per record type as approved,
    for a report on the months ``first``..``last``; they hide the catalog's views of the same
    name for this connection only (a DuckDB cursor is a connection: concurrent reports on
    other cursors see the catalog as it is), until :func:`drop_asof_views`. A record counts in
    the latest version that reached the broker before the approval in force of its station
    for the month it is reported in: its service month when that lies in the period (a visit,
    a dose …), else the period's last month (a person registered, a patient enrolled or a
    dose given before the period, consulted as the period ended). Station-months without an
    approval have no records. The report SQL runs on them unchanged.
    """
    cutoffs = sorted(
        (station, month, sm.approved_at)
        for (station, month), sm in ledger.stations.items()
        if sm.approved_at is not None
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CUTOFFS} (station_code VARCHAR, month VARCHAR, "
        "cutoff TIMESTAMPTZ)"
    )
    if cutoffs:
        con.executemany(f"INSERT INTO {CUTOFFS} VALUES (?, ?, ?)", cutoffs)
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    catalog = '"' + str(row[0]).replace('"', '""') + '".main'
    lo, hi = _quote(first), _quote(last)
    for rt in RecordType:
        names = ", ".join(f'"{c.name}"' for c in tier_columns(rt.value))
        # a delete carries no date: it belongs to the month of the version it deletes
        month = (
            "coalesce(CASE WHEN op = 'delete' THEN lag(service_month) OVER (PARTITION BY "
            "record_id ORDER BY record_version) END, service_month)"
        )
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW "{rt.value}" AS SELECT {names} FROM ('
            f"SELECT c.* FROM (SELECT *, CASE WHEN {month} BETWEEN {lo} AND {hi} THEN {month} "
            f'ELSE {hi} END AS _month FROM {catalog}."{rt.value}_changes") c '
            f"JOIN temp.main.{CUTOFFS} k ON k.station_code = c.station_code "
            "AND k.month = c._month "
            "WHERE c.received_time <= k.cutoff QUALIFY row_number() OVER ("
            "PARTITION BY c.record_id ORDER BY c.record_version DESC, c.event_time DESC, "
            "c.event_id DESC) = 1) WHERE op <> 'delete'"
        )


def drop_asof_views(con: duckdb.DuckDBPyConnection) -> None:
    """Remove :func:`asof_views`' temporary views: the catalog's views show again."""
    for rt in RecordType:
        con.execute(f'DROP VIEW IF EXISTS temp.main."{rt.value}"')
    con.execute(f"DROP TABLE IF EXISTS temp.main.{CUTOFFS}")


def _quote(month: str) -> str:
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        raise ValueError(f"not a month: {month!r}")
    return f"'{month}'"
