"""`tuyen` commands of the `sinks` package: sink, compact, catalog."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deploy.settings import Settings
from sinks.catalog import CATALOG_TIERS, build_catalog
from sinks.compact import compact
from sinks.config import SINK_NAMES, CompactConfig, sink_config

_SINKS_HELP = f"Sinks to run: {', '.join(SINK_NAMES)}."
_TIER_HELP = f"One of {', '.join(CATALOG_TIERS)}."
_DEFAULT_CATALOG = Path("catalog.duckdb")

_FAILED_GRACE_S = 30.0  # how long the other sinks get to stop when one failed

logger = logging.getLogger(__name__)
console = Console(stderr=True)
out = Console()


def _bootstrap(s: Settings, given: str | None) -> str:
    if given:
        return given
    from deploy.cli import require_bootstrap  # lazy: deploy.cli imports this module

    return require_bootstrap(s)


def sink(
    names: Annotated[list[str], typer.Argument(help=_SINKS_HELP)],
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
) -> None:
    """Run sink consumers (tier topics → Parquet stores) until SIGTERM/SIGINT.

    When any sink fails (an error it cannot retry), the others are stopped and the process
    exits with code 1, so a supervisor restarts it."""
    from sinks.consumer import SinkRunner  # confluent_kafka only when running sinks

    s = Settings()
    if (topic or group) and len(names) != 1:
        console.print("[red]--topic/--group need exactly one sink[/red]")
        raise typer.Exit(2)
    boot = _bootstrap(s, bootstrap)
    runners = [
        SinkRunner(
            sink_config(
                name,
                bootstrap=boot,
                store_root=root or s.store_root,
                prefix=s.topic_prefix,
                topic=topic,
                group=group,
                batch_size=batch_size,
                rotate_rows=rotate_rows,
                rotate_bytes=int(rotate_mb * 1024 * 1024),
                max_segment_age_s=max_segment_age,
                flush_interval_s=flush_interval,
                approver_keys=s.approver_keys,
            )
        )
        for name in names
    ]
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


def compact_cmd(
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    before_month: str = typer.Option(
        None, help="Compact months before YYYY-MM (default: the current month)."
    ),
    min_file_age: float = typer.Option(3600.0, help="Skip files younger than this (seconds)."),
) -> None:
    """Merge small files of closed partitions (idempotent; safe while readers read)."""
    s = Settings()
    report = compact(
        CompactConfig(
            store_root=root or s.store_root, before_month=before_month, min_file_age_s=min_file_age
        )
    )
    table = Table("directories", "files in", "files out", "rows in", "rows out")
    table.add_row(
        str(report.directories),
        str(report.files_in),
        str(report.files_out),
        str(report.rows_in),
        str(report.rows_out),
    )
    out.print(table)


def catalog(
    out_path: Annotated[
        Path, typer.Option("--out", help="DuckDB file to write.")
    ] = _DEFAULT_CATALOG,
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    tier: str = typer.Option("national", help=_TIER_HELP),
    province: str = typer.Option(None, help="Only this province's folder."),
    hierarchy: Annotated[
        Path | None, typer.Option(help="Folder with units/links/population CSV.")
    ] = None,
) -> None:
    """Write a DuckDB database of views over a store (open it with the duckdb CLI)."""
    s = Settings()
    path = build_catalog(
        root or s.store_root, out_path, tier, province=province, hierarchy=hierarchy
    )
    out.print(f"catalog written: {path} (tier={tier}); try: duckdb {path} -c 'SHOW TABLES'")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `tuyen` app."""
    app.command("sink")(sink)
    app.command("compact")(compact_cmd)
    app.command("catalog")(catalog)
    from sinks.reports import cli as reports_cli

    reports_cli.register(app)
