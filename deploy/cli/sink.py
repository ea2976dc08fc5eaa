"""`tuyen sink`, `tuyen compact`, `tuyen catalog`: the `sinks` package from the command line."""

from __future__ import annotations

import logging
import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from deploy.cli.common import console, fail, kafka, out, settings
from sinks.catalog import CATALOG_TIERS, build_catalog
from sinks.compact import compact as run_compact
from sinks.config import SINK_NAMES, CompactConfig, sink_config

__all__ = ["CatalogTier", "SinkName", "catalog", "compact", "sink"]

#: Choices derived from the sinks package's own declarations (declared once, there).
SinkName = StrEnum("SinkName", {n: n for n in SINK_NAMES})  # type: ignore[misc]
CatalogTier = StrEnum("CatalogTier", {t: t for t in CATALOG_TIERS})  # type: ignore[misc]
_NATIONAL = CatalogTier("national")

_DEFAULT_CATALOG = Path("catalog.duckdb")

_FAILED_GRACE_S = 30.0  # how long the other sinks get to stop when one failed

logger = logging.getLogger(__name__)


def sink(
    ctx: typer.Context,
    names: Annotated[list[SinkName], typer.Argument(help="Sinks to run.")],
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    bootstrap: str = typer.Option(None, help="Kafka bootstrap (default: the dev broker)."),
    topic: str = typer.Option(None, help="Override the topic (one sink only)."),
    group: str = typer.Option(None, help="Override the consumer group (one sink only)."),
    batch_size: int = typer.Option(10_000, help="Messages per consume() call."),
    rotate_rows: int = typer.Option(100_000, help="Close a segment after this many messages."),
    rotate_mb: float = typer.Option(16.0, help="Close a segment after this many MiB of values."),
    max_segment_age: float = typer.Option(300.0, help="Close a segment after this many seconds."),
    flush_interval: float = typer.Option(2.0, help="Flush open segments this often (seconds)."),
    exit_when_idle: float = typer.Option(None, help="Stop after this many idle seconds."),
    metrics_port: int = typer.Option(
        None, help="Serve Prometheus /metrics on this loopback port (0: any free port)."
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1",
        help="Loopback address of the /metrics server (it has no token check: never public).",
    ),
) -> None:
    """Run sink consumers (tier topics → Parquet stores) until SIGTERM/SIGINT.

    When any sink fails (an error it cannot retry), the others are stopped and the process
    exits with code 1, so a supervisor restarts it."""
    from sinks.consumer import SinkRunner  # confluent_kafka only when running sinks

    s = settings(ctx)
    if (topic or group) and len(names) != 1:
        fail("--topic/--group need exactly one sink")
    if metrics_port is not None:
        from streams.monitor.server import is_loopback  # one definition of loopback

        if not is_loopback(metrics_host):
            fail(
                f"--metrics-host {metrics_host}: the sinks' /metrics has no token check, so "
                "it listens on loopback only (127.0.0.1, ::1)"
            )
    conn = kafka(ctx, bootstrap)
    runners = [
        SinkRunner(
            sink_config(
                name.value,
                kafka=conn,
                store_root=root or s.store_root,
                prefix=s.topic_prefix,
                topic=topic,
                group=group,
                batch_size=batch_size,
                rotate_rows=rotate_rows,
                rotate_bytes=int(rotate_mb * 1024 * 1024),
                max_segment_age_s=max_segment_age,
                flush_interval_s=flush_interval,
            )
        )
        for name in names
    ]
    if metrics_port is not None:
        from sinks.metrics import serve_metrics

        bound = serve_metrics(lambda: runners, metrics_port, metrics_host)
        console.print(f"sink metrics on http://{metrics_host}:{bound}/metrics")
    stop = threading.Event()
    failed: list[str] = []

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def _run(runner: SinkRunner) -> None:
        try:
            runner.run(stop, exit_when_idle_s=exit_when_idle)
        except BaseException:  # a dead sink thread must never go unnoticed
            logger.critical(
                "sink thread died, stopping the process sink=%s topic=%s",
                runner.config.name,
                runner.config.topic,
                exc_info=True,
            )
            failed.append(runner.config.name)
            stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    threads = [
        threading.Thread(target=_run, args=(r,), name=f"sink-{r.config.name}", daemon=True)
        for r in runners
    ]
    for t in threads:
        t.start()
    failed_at: float | None = None
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.5)
        if failed and failed_at is None:
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > _FAILED_GRACE_S:
            break  # the others did not stop in time: exit anyway (daemon threads)
    if failed:
        console.print(f"[red]sink failed: {', '.join(failed)} (see the log)[/red]")
        logger.critical("tuyen sink exiting with code 1 failed=%s", ",".join(failed))
        raise typer.Exit(1)
    table = Table("sink", "topic", "messages", "files written", "commits")
    for r in runners:
        table.add_row(
            r.config.name,
            r.config.topic,
            str(r.stats.messages),
            str(r.writer.files_written),
            str(r.stats.commits),
        )
    out.print(table)


def compact(
    ctx: typer.Context,
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    before_month: str = typer.Option(
        None, help="Compact months before YYYY-MM (default: the current month)."
    ),
    min_file_age: float = typer.Option(3600.0, help="Skip files younger than this (seconds)."),
) -> None:
    """Merge small files of closed partitions (idempotent; safe while readers read)."""
    s = settings(ctx)
    report = run_compact(
        CompactConfig(
            store_root=root or s.store_root,
            before_month=before_month,
            min_file_age_s=min_file_age,
            dlq_retention_days=s.dlq_retention_days,
        )
    )
    table = Table("directories", "files in", "files out", "rows in", "rows out", "DLQ expired")
    table.add_row(
        str(report.directories),
        str(report.files_in),
        str(report.files_out),
        str(report.rows_in),
        str(report.rows_out),
        str(report.dlq_files_expired),
    )
    out.print(table)


def catalog(
    ctx: typer.Context,
    out_path: Annotated[
        Path, typer.Option("--out", help="DuckDB file to write.")
    ] = _DEFAULT_CATALOG,
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    tier: Annotated[CatalogTier, typer.Option(help="The tier store to open.")] = _NATIONAL,
    province: str = typer.Option(None, help="Only this province's folder."),
    hierarchy: Annotated[
        Path | None, typer.Option(help="Folder with units/links/population CSV.")
    ] = None,
) -> None:
    """Write a DuckDB database of views over a store (open it with the duckdb CLI)."""
    s = settings(ctx)
    path = build_catalog(
        root or s.store_root, out_path, tier.value, province=province, hierarchy=hierarchy
    )
    out.print(f"catalog written: {path} (tier={tier.value}); try: duckdb {path} -c 'SHOW TABLES'")
