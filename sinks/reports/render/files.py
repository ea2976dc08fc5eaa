"""CSV and Parquet outputs: the long format of :meth:`Report.rows`."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sinks.reports.model import Report

__all__ = ["SCHEMA", "to_arrow", "write_csv", "write_parquet"]

SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("tier", pa.string()),
        ("report_unit", pa.string()),
        ("period", pa.string()),
        ("period_first_month", pa.string()),
        ("period_last_month", pa.string()),
        ("hierarchy", pa.string()),
        ("level", pa.string()),
        ("unit_code", pa.string()),
        ("unit_name", pa.string()),
        ("indicator", pa.string()),
        ("indicator_name", pa.string()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("multiplier", pa.int64()),
        ("value", pa.float64()),
        ("value_unit", pa.string()),
        ("scaling", pa.string()),
        ("basis", pa.string()),
        ("submitted_numerator", pa.int64()),
        ("submitted_denominator", pa.int64()),
        ("submitted_value", pa.float64()),
        ("suppressed", pa.bool_()),  # a small cell: numerator/denominator/value empty
    ]
)


def to_arrow(report: Report) -> pa.Table:
    return pa.Table.from_pylist(report.rows(), schema=SCHEMA)


def write_csv(report: Report, out: Path | IO[bytes]) -> None:
    pacsv.write_csv(to_arrow(report), out)


def write_parquet(report: Report, out: Path) -> None:
    pq.write_table(to_arrow(report), out, compression="zstd")
