"""A person's current records in a province's record-level store (the DuckDB catalog)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import duckdb
import orjson

__all__ = ["SUMMARY_TYPES", "StoredRecord", "person_records"]

#: Record types the summary reads, with the payload field that names the person.
SUMMARY_TYPES: Final = {
    "person": "health_id",
    "encounter": "health_id",
    "immunization": "health_id",
    "chronic_followup": "health_id",
    "antenatal_visit": "health_id",
    "birth": "mother_health_id",
    "death": "health_id",
    "disease_case": "health_id",
    "medicine_dispensed": "health_id",
}


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record's current state, where it was recorded and when."""

    record_type: str
    record_id: str
    station_code: str
    station_name: str
    event_time: datetime
    data: dict[str, Any]


def person_records(con: duckdb.DuckDBPyConnection, health_id: str) -> list[StoredRecord]:
    """Every live record keyed by ``health_id`` (current versions; deletes left out), across
    every station of the store, oldest first."""
    out: list[StoredRecord] = []
    for rt in SUMMARY_TYPES:
        rows = con.execute(
            f'SELECT record_id, station_code, station_name, event_time, data FROM "{rt}" '
            "WHERE record_key = ? ORDER BY event_time, record_id",
            [health_id],
        ).fetchall()
        for record_id, station, name, when, data in rows:
            out.append(StoredRecord(rt, record_id, station, name, when, orjson.loads(data)))
    out.sort(key=lambda r: (r.event_time, r.record_type, r.record_id))
    return out
