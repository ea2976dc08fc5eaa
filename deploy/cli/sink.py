"""`tuyen sink`, `tuyen compact`, `tuyen catalog`: the `sinks` package from the command line."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deploy.anchors import approver_registry
from deploy.cli.common import Bootstrap, console, fail, kafka, out, settings
from deploy.cli.privacy import erasure_hash
from deploy.settings import Settings
from schemas.kafka import KafkaConnection
from sinks.catalog import build_catalog
from sinks.catalog_sql import CATALOG_KINDS
from sinks.compact import compact as run_compact
from sinks.config import (
    ERASURE_WRITERS,
    RECORD_SINKS,
    SINK_NAMES,
    CompactConfig,
    SinkConfig,
    sink_config,
)
from sinks.erasure import ErasedWrites
from sinks.roots import COUNTRY_OWNERS, StoreRoots
from sinks.supervise import SinkSupervisor

if TYPE_CHECKING:
    from sinks.consumer import SinkRunner

__all__ = ["CatalogTier", "CompactOwner", "SinkName", "catalog", "compact", "sink"]

#: Choices derived from the sinks package's own declarations (declared once, there).
SinkName = StrEnum("SinkName", {n: n for n in SINK_NAMES})  # type: ignore[misc]
CatalogTier = StrEnum("CatalogTier", {t: t for t in CATALOG_KINDS})  # type: ignore[misc]
_NATIONAL = CatalogTier("national")

_CATALOG = "catalog.duckdb"

#: The options' defaults are the sink configuration's own (declared once, in sinks.config).
_DEFAULT = {name: f.default for name, f in SinkConfig.model_fields.items()}

_FAILED_GRACE_S = 30.0  # how long the other sinks get to stop when one failed

logger = logging.getLogger(__name__)


def sink(
    ctx: typer.Context,
    names: Annotated[list[SinkName], typer.Argument(help="Sinks to run.")],
    province: str = typer.Option(
        None,
        help="One province's record-level sinks (district, province): its topic "
        "tier.province.<code>, its groups, its own root.",
    ),
    root: str = typer.Option(
        None, help="Write this root only (default: each sink's owner's root, docs/stores.md)."
    ),
    bootstrap: Bootstrap = None,
    topic: str = typer.Option(None, help="Override the topic (one sink only)."),
    group: str = typer.Option(None, help="Override the consumer group (one sink only)."),
    batch_size: int = typer.Option(_DEFAULT["batch_size"], help="Messages per consume() call."),
    rotate_rows: int = typer.Option(
        _DEFAULT["rotate_rows"], help="Close a segment after this many messages."
    ),
    rotate_mb: float = typer.Option(
        _DEFAULT["rotate_bytes"] / (1024 * 1024),
        help="Close a segment after this many MiB of values.",
    ),
    max_segment_age: float = typer.Option(
        _DEFAULT["max_segment_age_s"], help="Close a segment after this many seconds."
    ),
    flush_interval: float = typer.Option(
        None,
        help="Flush an open segment's new rows once the oldest has waited this long "
        "(seconds; default: each kind of sink's own, sinks.config.FLUSH_INTERVAL_S; 0.25 "
        "for low latency, with --aggregates-flush-interval 10).",
    ),
    aggregates_flush_interval: float = typer.Option(
        None,
        help="Same for the aggregates sink (default: --flush-interval if given, else its own).",
    ),
    fresh_flush: float = typer.Option(
        None,
        help="Flush sooner, once the oldest new row has waited this long, while few rows wait "
        "(a trickle; seconds, 0: never sooner; default: each kind's own, "
        "sinks.config.FRESH_FLUSH_S: none; none with --flush-interval).",
    ),
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
    s = settings(ctx)
    _check_options(names, province, topic, group, metrics_port, metrics_host)
    approvers, hashed = _sink_keys(s, names, root)  # fail closed: checked before Kafka
    runners = _runners(
        names,
        s,
        kafka(ctx, bootstrap),
        approvers=approvers,
        hashed=hashed,
        province=province,
        root=root,
        topic=topic,
        group=group,
        batch_size=batch_size,
        rotate_rows=rotate_rows,
        rotate_bytes=int(rotate_mb * 1024 * 1024),
        max_segment_age_s=max_segment_age,
        flush_interval_s=flush_interval,
        aggregates_flush_interval_s=aggregates_flush_interval,
        fresh_flush_s=fresh_flush,
    )
    if metrics_port is not None:
        from sinks.metrics import serve_metrics

        bound = serve_metrics(lambda: runners, metrics_port, metrics_host)
        console.print(f"sink metrics on http://{metrics_host}:{bound}/metrics")
    stop = threading.Event()
    _stop_on_signals(stop)
    # the threads, a sink's failure, the grace for the others: sinks.supervise
    failed = SinkSupervisor(
        runners, stop, exit_when_idle_s=exit_when_idle, grace_s=_FAILED_GRACE_S
    ).run()
    if failed:
        console.print(f"[red]sink failed: {', '.join(failed)} (see the log)[/red]")
        logger.critical("tuyen sink exiting with code 1 failed=%s", ",".join(failed))
        raise typer.Exit(1)
    out.print(_summary(runners))


def _check_options(
    names: list[SinkName],
    province: str | None,
    topic: str | None,
    group: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """`tuyen sink`'s options that go together, checked before anything is opened."""
    if (topic or group) and len(names) != 1:
        fail("--topic/--group need exactly one sink")
    if province is not None:
        others = [n.value for n in names if n.value not in RECORD_SINKS]
        if others:
            fail(f"--province is for the record-level sinks ({', '.join(RECORD_SINKS)}): {others}")
    if metrics_port is not None:
        from streams.monitor.server import is_loopback  # one definition of loopback

        if not is_loopback(metrics_host):
            fail(
                f"--metrics-host {metrics_host}: the sinks' /metrics has no token check, so "
                "it listens on loopback only (127.0.0.1, ::1)"
            )


def _sink_keys(
    s: Settings, names: list[SinkName], root: str | None
) -> tuple[str | None, Callable[[str], str] | None]:
    """The approvers' keys (the signoff sink) and the erasure register's keyed hash
    (sinks.erasure), each checked (fail closed) before Kafka and before any thread; one
    --root holds every register entry, so every sink writing it needs the key."""
    approvers: str | None = None
    if any(n.value == "signoff" for n in names):
        approver_registry(s, "tuyen sink signoff")
        approvers = s.approver_keys
    hashed = None
    if root is not None or any(n.value in ERASURE_WRITERS for n in names):
        hashed = erasure_hash(s, "tuyen sink")
    return approvers, hashed


def _runners(
    names: list[SinkName],
    s: Settings,
    conn: KafkaConnection,
    *,
    approvers: str | None,
    hashed: Callable[[str], str] | None,
    province: str | None,
    root: str | None,
    topic: str | None,
    group: str | None,
    flush_interval_s: float | None,
    aggregates_flush_interval_s: float | None,
    **options: object,
) -> list[SinkRunner]:
    """One :class:`~sinks.consumer.SinkRunner` per sink named, with the options given
    (``options``: :func:`~sinks.config.sink_config`'s own keywords)."""
    from sinks.consumer import SinkRunner  # confluent_kafka only when running sinks

    roots = s.store_roots()
    runners = []
    for name in names:
        store_root, province_roots = sink_roots(name.value, province, root, roots)
        config = sink_config(
            name.value,
            kafka=conn,
            prefix=s.topic_prefix,
            topic=topic,
            group=group,
            province=province,
            flush_interval_s=aggregates_flush_interval_s
            if name.value == "aggregates" and aggregates_flush_interval_s is not None
            else flush_interval_s,
            approver_keys=approvers,
            development=s.dev,
            store_root=store_root,
            province_roots=province_roots,
            **options,
        )
        runners.append(SinkRunner(config, erasure=ErasedWrites(hashed)))
    return runners


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (the sinks flush, commit and return)."""

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def _summary(runners: list[SinkRunner]) -> Table:
    """What each sink did: messages, files written, commits."""
    table = Table("sink", "topic", "messages", "files written", "commits")
    for r in runners:
        table.add_row(
            r.config.name,
            r.config.topic,
            str(r.stats.messages),
            str(r.writer.files_written),
            str(r.stats.commits),
        )
    return table


def sink_roots(
    name: str, province: str | None, root: str | None, roots: StoreRoots
) -> tuple[str, str | None]:
    """Where sink ``name`` writes: ``root`` when given (everything in it); else its owner's
    root (national and aggregates: the national root; dlq: the quarantine root; one
    province's record-level sinks: that province's root; the single-topic shape's and the
    signoff sink's: each row to its province's root, its own dead rows to the quarantine
    root)."""
    if root is not None:
        return root, None
    if name in RECORD_SINKS:
        if province is not None:
            return roots.province_root(province), None
        return roots.quarantine, roots.province
    if name == "signoff":  # each province's decisions in its own root, beside its reports
        return roots.quarantine, roots.province
    return (roots.quarantine if name == "dlq" else roots.national), None


#: ``tuyen compact --owner``: the roots that are not a province's (each its own job).
CompactOwner = StrEnum("CompactOwner", {o: o for o in COUNTRY_OWNERS})  # type: ignore[misc]


def compact(
    ctx: typer.Context,
    root: str = typer.Option(None, help="One root (default: every owner's root)."),
    province: str = typer.Option(
        None,
        help="One province's root only (TUYEN_PROVINCE_ROOT with its code): what a job "
        "holding that province's store credentials alone runs.",
    ),
    owner: Annotated[
        CompactOwner | None,
        typer.Option(help="The national or the quarantine root only (TUYEN_*_ROOT)."),
    ] = None,
    before_month: str = typer.Option(
        None, help="Compact months before YYYY-MM (default: the current month)."
    ),
    min_file_age: float = typer.Option(3600.0, help="Skip files younger than this (seconds)."),
) -> None:
    """Merge small files of closed partitions (idempotent; safe while readers read)."""
    s = settings(ctx)
    roots = s.store_roots()
    targets = _compact_targets(roots, root, province, owner.value if owner else None)
    hashed = None  # the national root's register holds pseudonyms: no key needed there alone
    if any(t != roots.national for t in targets):
        hashed = erasure_hash(s, "tuyen compact")
    table = Table(
        "root", "directories", "files in", "files out", "rows in", "rows out", "DLQ expired"
    )
    for target in dict.fromkeys(targets):
        report = run_compact(
            CompactConfig(
                store_root=target,
                before_month=before_month,
                min_file_age_s=min_file_age,
                dlq_retention_days=s.dlq_retention_days,
            ),
            erasure=ErasedWrites(hashed),
        )
        table.add_row(
            target,
            str(report.directories),
            str(report.files_in),
            str(report.files_out),
            str(report.rows_in),
            str(report.rows_out),
            str(report.dlq_files_expired),
        )
    out.print(table)


def _compact_targets(
    roots: StoreRoots, root: str | None, province: str | None, owner: str | None
) -> list[str]:
    """The roots `tuyen compact` opens: the one named (``--root``, ``--province``,
    ``--owner``: at most one of them), else every owner's root it can reach."""
    if sum(x is not None for x in (root, province, owner)) > 1:
        fail("--root, --province and --owner each name one root: give one of them")
    if root is not None:
        return [root]
    if owner is not None:
        return [roots.national if owner == "national" else roots.quarantine]
    if province is not None:
        from schemas.hierarchy import HierarchyError

        try:
            return [roots.province_root(province)]
        except HierarchyError as exc:
            fail(f"--province {province!r}: {exc.message}")
    local = "://" not in roots.province or roots.province.startswith("file://")
    return [
        roots.national,
        roots.quarantine,
        *(r for r in roots.province_roots() if not local or Path(r).exists()),
    ]


def catalog(
    ctx: typer.Context,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="DuckDB file to write (default: catalog.duckdb in the root)."),
    ] = None,
    root: str = typer.Option(None, help="The root to open (default: the tier's owner's root)."),
    tier: Annotated[
        CatalogTier, typer.Option(help="The tier store to open (dlq: the operators' catalog).")
    ] = _NATIONAL,
    province: str = typer.Option(None, help="Only this province (its own root)."),
    hierarchy: Annotated[
        Path | None, typer.Option(help="Folder with units/links/population CSV.")
    ] = None,
) -> None:
    """Write a DuckDB database of views over one owner's root, for the DuckDB 1.x CLI (paths
    relative to the root: open it from there, or SET file_search_path)."""
    s = settings(ctx)
    if root is None:
        roots = s.store_roots().for_store(tier.value, [province] if province else None)
        if len(roots) != 1:
            fail(f"--tier {tier.value}: each province has its own root; name one (--province)")
        root = roots[0]
    if out_path is None:
        if "://" in root and not root.startswith("file://"):
            fail("an object-store root: name the catalog file (--out)")
        out_path = Path(root.removeprefix("file://")) / _CATALOG
    path = build_catalog(root, out_path, tier.value, province=province, hierarchy=hierarchy)
    out.print(
        f"catalog written: {path} (tier={tier.value}, root={root}); try: "
        f"cd {root} && duckdb {path} -c 'SHOW TABLES'"
    )
