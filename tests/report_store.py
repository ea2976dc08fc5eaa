"""Report tests over the production catalog: hand-made changes written as real store files.

``change(...)`` builds a tier record (the fields of :class:`schemas.tier.TierRecord`, placed
in the hierarchy valid at its event time, as the validator places it); ``write_store``
encodes records with the sinks' own encoder (``sinks.encode.tier_encoder``: the production
columns) into Parquet under ``<root>/<tier>/province=…/record_type=…/month=…/``, the national
copy through the national transform (``streams.pseudonymise``) as the stream layer does;
``Stores`` opens ``sinks.catalog.open_catalog`` on them, one connection per tier, so every
report test runs the production view statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq

from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.registry import CURRENT_MAJOR, RecordType
from schemas.service import service_month
from schemas.signoff import SignoffDecision, decision_key
from sinks.catalog import open_catalog
from sinks.encode import tier_encoder
from sinks.reports import Report, ReportConfig, ReportRequest, run_report, source_tier
from sinks.signoff.encode import LOG_APPEND_TIME, signoff_encoder
from sinks.testing import FakeMessage
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser

__all__ = ["TIERS", "StorePublisher", "Stores", "change", "write_store"]

TIERS = ("district", "province", "national")
PSEUDONYM_KEY = b"tests-report-store-key"
_SEQ = count(1)


def change(
    h: Hierarchy,
    record_type: str,
    record_id: str,
    data: Mapping[str, Any] | None,
    station: str,
    event_time: datetime,
    *,
    received_time: datetime | None = None,
    version: int = 1,
    op: str = "upsert",
) -> dict[str, Any]:
    """A tier record (dict) of ``station``, placed in the hierarchy valid at ``event_time``."""
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=VN_TZ)
    pl = h.lookup(station, event_time)
    n = next(_SEQ)
    rt = RecordType(record_type)
    received = (received_time or event_time).astimezone(UTC)
    return {
        "event_id": f"0190a000-0000-7000-8000-{n:012d}",
        "record_type": rt.value,
        "record_id": record_id,
        "record_key": record_id.split(":")[0],
        "op": op,
        "record_version": version,
        "station_seq": n,
        "schema_major": CURRENT_MAJOR[rt],
        "source_major": CURRENT_MAJOR[rt],
        "event_time": event_time.astimezone(UTC),
        "received_time": received,
        "processed_time": received,
        "event_month": event_time.astimezone(VN_TZ).strftime("%Y-%m"),
        "service_month": service_month(
            rt.value,
            None if op == "delete" else data,
            event_time.astimezone(VN_TZ).strftime("%Y-%m"),
        ),
        "station_code": pl.station.code,
        "station_name": pl.station.name,
        "district_code": pl.district.code,
        "district_name": pl.district.name,
        "province_code": pl.province.code,
        "province_name": pl.province.name,
        "signer": f"hw-{pl.station.code}-1",
        "pseudonymised": False,
        "data": None if op == "delete" else dict(data or {}),
    }


def write_store(
    root: Path,
    records: Iterable[Mapping[str, Any]],
    tiers: Iterable[str] = TIERS,
    *,
    segment: int = 0,
) -> Path:
    """Write ``records`` as the tier sinks would: one file per store directory and tier
    (``segment`` names the files, so a later batch lands beside the earlier ones)."""
    pseudonymiser = Pseudonymiser(PSEUDONYM_KEY)
    recs = list(records)
    for tier in tiers:
        rows = [national_record(r, pseudonymiser) if tier == "national" else r for r in recs]
        msgs = [
            FakeMessage(f"tier.{tier}", 0, i, orjson.dumps(r), str(r["record_key"]).encode())
            for i, r in enumerate(rows)
        ]
        for directory, table in tier_encoder(tier)(msgs).items():
            assert not directory.startswith("dlq"), f"a test record was dead-lettered: {table}"
            folder = root / directory
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"tier.{tier}+0+{segment}.parquet")
    return root


class Stores:
    """The tier stores of ``records`` under ``root``, and a catalog connection per tier."""

    def __init__(self, root: Path, records: Iterable[Mapping[str, Any]]) -> None:
        self.root = write_store(root, records)
        self.segments = 1
        self.cons = {tier: open_catalog(root, tier) for tier in TIERS}

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        """More records (late arrivals, corrections), in new files the views pick up."""
        write_store(self.root, records, segment=self.segments)
        self.segments += 1

    def con(self, tier: str) -> duckdb.DuckDBPyConnection:
        return self.cons[tier]

    def report(
        self,
        h: Hierarchy,
        kind: str,
        tier: str,
        unit: str | None,
        period: str,
        mode: str = "as-recorded",
        *,
        config: ReportConfig | None = None,
        **request: Any,
    ) -> Report:
        """A report over the store it reads (``sinks.reports.source_tier``: the province tier
        for a national report), as the national principal unless told, exact (no small-cell
        suppression) unless ``config`` says otherwise."""
        req = ReportRequest(
            kind=kind,
            tier=tier,
            unit=unit,
            period=period,
            hierarchy_mode=mode,
            principal=request.pop("principal", "national"),
            **request,
        )
        exact = ReportConfig(suppression_threshold=1)
        return run_report(self.cons[source_tier(tier)], h, req, config=config or exact)

    def close(self) -> None:
        for con in self.cons.values():
            con.close()


class StorePublisher:
    """A :class:`sinks.signoff.service.DecisionPublisher` that does what the broker and the
    ``signoff`` sink do: stamps each decision with a receive time (``clock()``), verifies it
    with the sink's own encoder and writes it under ``<root>/signoff/``."""

    def __init__(self, root: Path, clock: Callable[[], datetime]) -> None:
        self.root = root
        self.clock = clock
        self.encode = signoff_encoder(None, development=True)
        self.offset = 0

    def publish(self, decision: SignoffDecision) -> datetime:
        received = self.clock()
        msg = FakeMessage(
            "signoff.decisions",
            0,
            self.offset,
            decision.to_json(),
            decision_key(decision),
            _timestamp_ms=int(received.timestamp() * 1000),
            _timestamp_type=LOG_APPEND_TIME,  # the signoff topic's
        )
        for directory, table in self.encode([msg]).items():
            folder = self.root / directory
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"signoff.decisions+0+{self.offset}.parquet")
        self.offset += 1
        return received
