"""`tuyen streams worker` and `tuyen aggregates show`."""

from __future__ import annotations

import logging
from typing import Any

import typer

__all__ = ["register", "streams_app"]

streams_app = typer.Typer(help="The stream layer: validate, enrich, route, aggregate.")
aggregates_app = typer.Typer(help="Live tiered aggregates (from the aggregates.live topic).")
logger = logging.getLogger(__name__)


def _settings() -> Any:
    from deploy.settings import Settings

    return Settings()


def _bootstrap(s: Any, bootstrap: str | None) -> str:
    if bootstrap:
        return bootstrap
    if s.kafka_bootstrap:
        return str(s.kafka_bootstrap)
    try:
        from deploy.cli import current_bootstrap

        found = current_bootstrap(s)
    except Exception:  # the deploy CLI may be unavailable in a bare worker image
        found = None
    if not found:
        print("no broker: set KAFKA_BOOTSTRAP, pass --bootstrap or run `tuyen broker up`")
        raise typer.Exit(2)
    return str(found)


@streams_app.command("worker")
def worker(
    bootstrap: str = typer.Option(None, help="Kafka bootstrap (default: settings)."),
    topic_prefix: str = typer.Option(None, help="Topic prefix (default: TUYEN_TOPIC_PREFIX)."),
    app_id: str = typer.Option("tuyen-streams", help="faust app id (consumer group)."),
    partitions: int = typer.Option(None, help="Raw topic partitions (default: topics.py)."),
    web_port: int = typer.Option(6066, help="Port of the web views (0: disabled)."),
    batch_size: int = typer.Option(2000, help="Events per batch."),
    verify_threads: int = typer.Option(2, help="Threads for the stateless checks (in-process)."),
    verify_processes: int = typer.Option(
        1, help="Worker processes for the stateless checks (0: in the worker process)."
    ),
    session_timeout: float = typer.Option(30.0, help="Broker session timeout (s)."),
    data_dir: str = typer.Option(None, help="faust data dir (default: <TUYEN_HOME>/streams)."),
    state_store: str = typer.Option(
        "rocksdb", help="Per-record state: rocksdb (on disk under the data dir) or memory."
    ),
    create_topics: bool = typer.Option(True, help="Create missing pipeline topics first."),
    allow_create_time: bool = typer.Option(
        False,
        help="Accept a raw topic stamped with the producers' CreateTime: received time, "
        "timeliness and key revocation then take a time the sender chose. Only to replay "
        "recorded history in tests; never in production.",
    ),
    log_level: str = typer.Option("INFO", help="Worker log level."),
) -> None:
    """Run a stream worker until SIGTERM/SIGINT (drains the batch in flight and commits)."""
    from schemas.topics import RAW, topic_specs
    from streams.app import build_app
    from streams.config import StreamsConfig

    s = _settings()
    prefix = s.topic_prefix if topic_prefix is None else topic_prefix
    boot = _bootstrap(s, bootstrap)
    specs = topic_specs(prefix, s.topic_partitions)
    raw_partitions = partitions or next(
        p.partitions for p in specs if p.name.endswith("station.changes")
    )
    if create_topics:
        from deploy.topics import apply_topics

        apply_topics(boot, specs)
    config = StreamsConfig(
        bootstrap=boot,
        app_id=app_id,
        topic_prefix=prefix,
        partitions=raw_partitions,
        pseudonym_key=s.pseudonym_key,
        key_registry_path=s.key_registry,
        batch_size=batch_size,
        verify_threads=verify_threads,
        verify_processes=verify_processes,
        web_enabled=web_port > 0,
        web_port=web_port or 6066,
        broker_session_timeout_s=session_timeout,
        broker_heartbeat_interval_s=max(0.5, session_timeout / 10),
        data_dir=data_dir or str(s.home / "streams" / (prefix + app_id)),
        state_store=state_store,
    )
    from deploy.topics import raw_topic_problems

    problems = raw_topic_problems(boot, config.topic(RAW), raw_partitions)
    if allow_create_time:
        logger.warning(
            "ALLOW-CREATE-TIME: received times are whatever the producers wrote (replay only)"
        )
        problems = [p for p in problems if "LogAppendTime" not in p]
    if problems:
        for problem in problems:
            print(f"refusing to start: {problem}")
        raise typer.Exit(2)
    _create_internal_topics(config)
    run_worker(build_app(config), log_level)


def _create_internal_topics(config: Any) -> None:
    """Create the worker's internal topics before faust subscribes: faust declares them
    itself, but a consumer that subscribes before the metadata has spread "ignores the
    missing topic" and never consumes it (seen: live aggregates never published)."""
    from deploy.topics import apply_topics
    from schemas.topics import DAY_MS, TopicSpec

    specs = [
        TopicSpec(
            name, partitions, cleanup, retention_ms=-1 if cleanup == "compact" else 7 * DAY_MS
        )
        for name, partitions, cleanup in config.internal_topics()
    ]
    apply_topics(config.bootstrap, specs)


def run_worker(app: Any, log_level: str = "INFO") -> None:
    """Run a faust app as a worker in this process (blocks; handles SIGTERM/SIGINT)."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        runtime = getattr(app, "tuyen_runtime", None)
        if runtime is not None:
            runtime.close()


@aggregates_app.command("show")
def show(
    unit: str = typer.Option(None, help="Unit code (station, district, province, VN)."),
    period: str = typer.Option(None, help="Period YYYY-MM."),
    element: str = typer.Option(None, help="Data element."),
    bootstrap: str = typer.Option(None, help="Kafka bootstrap (default: settings)."),
    topic_prefix: str = typer.Option(None, help="Topic prefix (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Print the live aggregates (latest values from the compacted topic)."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from schemas.topics import AGGREGATES, topic_name
    from streams.live import read_live_aggregates

    s = _settings()
    prefix = s.topic_prefix if topic_prefix is None else topic_prefix
    rows = read_live_aggregates(
        _bootstrap(s, bootstrap),
        topic_name(AGGREGATES, prefix),
        unit=unit,
        period=period,
        element=element,
    )
    ordered = sorted(rows.values(), key=lambda r: (r["unit"], r["period"], r["element"]))
    if as_json:
        for r in ordered:
            print(orjson.dumps(r).decode())
        return
    table = Table("unit", "tier", "period", "element", "value", "updated_at")
    for r in ordered:
        table.add_row(
            r["unit"], r["tier"], r["period"], r["element"], str(r["value"]), r["updated_at"]
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `tuyen` app."""
    app.add_typer(streams_app, name="streams")
    app.add_typer(aggregates_app, name="aggregates")
    try:
        from streams.monitor import cli as monitor_cli
    except ImportError:
        return
    register_monitor = getattr(monitor_cli, "register", None)
    if register_monitor is not None:
        register_monitor(app)
