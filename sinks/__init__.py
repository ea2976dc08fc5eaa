"""Parquet tier stores, compaction, the DuckDB catalog and the reports.

    >>> from sinks import open_catalog              # doctest: +SKIP
    >>> con = open_catalog("out/store", "national")
    >>> con.execute("SELECT count(*) FROM encounter").fetchall()

The sink consumers (confluent-kafka) live in ``sinks.consumer`` (``SinkRunner``), imported
on demand so that the catalog and the reports do not pull in Kafka.
"""

from sinks.catalog import build_catalog, open_catalog
from sinks.catalog_sql import CATALOG_TIERS, catalog_sql
from sinks.compact import CompactReport, compact
from sinks.config import SINK_NAMES, CompactConfig, SinkConfig, sink_config
from sinks.exceptions import CatalogError, CompactionError, SinkError, StoreWriteError
from sinks.segments import SegmentWriter
from sinks.store import Store

__all__ = [
    "CATALOG_TIERS",
    "SINK_NAMES",
    "CatalogError",
    "CompactConfig",
    "CompactReport",
    "CompactionError",
    "SegmentWriter",
    "SinkConfig",
    "SinkError",
    "Store",
    "StoreWriteError",
    "build_catalog",
    "catalog_sql",
    "compact",
    "open_catalog",
    "sink_config",
]
