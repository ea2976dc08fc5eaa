"""Parquet tier stores, compaction, the DuckDB catalog and the reports."""
