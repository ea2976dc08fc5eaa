"""`tuyen streams worker` and `tuyen aggregates show` (also ``python -m streams worker``)."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated

import typer

from deploy.anchors import require_development, worker_anchors
from deploy.cli.common import Bootstrap, kafka, out, settings
from deploy.exceptions import ConfigError
from deploy.topics import apply_topics, raw_topic_problems
from schemas.kafka import KafkaConnection
from schemas.topics import AGGREGATES, RAW, topic_name, topic_specs
from streams.config import APP_ID, StreamsConfig

__all__ = ["aggregates_app", "streams_app"]

streams_app = typer.Typer(help="The stream layer: validate, enrich, route, aggregate.")
aggregates_app = typer.Typer(help="Live tiered aggregates (from the aggregates.live topic).")
logger = logging.getLogger(__name__)


class StateStoreChoice(StrEnum):
    """Where the worker keeps the per-record state."""

    ROCKSDB = "rocksdb"
    MEMORY = "memory"


@streams_app.command("worker")
def worker(
    ctx: typer.Context,
    bootstrap: Bootstrap = None,
    topic_prefix: str = typer.Option(None, help="Topic prefix (default: TUYEN_TOPIC_PREFIX)."),
    app_id: str = typer.Option(APP_ID, help="faust app id (consumer group)."),
    partitions: int = typer.Option(None, help="Raw topic partitions (default: topics.py)."),
    web_port: int = typer.Option(6066, help="Port of the web views (0: disabled)."),
    web_host: str = typer.Option(
        "127.0.0.1", help="Address of the web views (/aggregates/, /stats/): loopback unless told."
    ),
    batch_size: int = typer.Option(
        StreamsConfig.model_fields["batch_size"].default, help="Events per batch."
    ),
    batch_within: float = typer.Option(
        StreamsConfig.model_fields["batch_within_s"].default,
        help="Longest wait (s) for a batch to fill: the worker's share of freshness at low rates.",
    ),
    verify_threads: int = typer.Option(
        StreamsConfig.model_fields["verify_threads"].default,
        help="Threads for the stateless checks (in-process; 0: on the event loop).",
    ),
    verify_processes: int = typer.Option(
        StreamsConfig.model_fields["verify_processes"].default,
        help="Worker processes for the stateless checks (0: in the worker process).",
    ),
    overlap_checkpoint: bool = typer.Option(
        StreamsConfig.model_fields["overlap_checkpoint"].default,
        help="Process the next batch while the one before it is checkpointed (waits for the "
        "broker's acknowledgements); checkpoints and acks stay one at a time, in order.",
    ),
    publish_valid: bool = typer.Option(
        StreamsConfig.model_fields["publish_valid"].default,
        help="Also publish every accepted record to changes.valid (nothing in the pipeline "
        "reads it; the same bytes as its record-level tier topic).",
    ),
    session_timeout: float = typer.Option(30.0, help="Broker session timeout (s)."),
    data_dir: str = typer.Option(None, help="faust data dir (default: <TUYEN_HOME>/streams)."),
    state_store: Annotated[
        StateStoreChoice,
        typer.Option(help="Per-record state: rocksdb (on disk under the data dir) or memory."),
    ] = StateStoreChoice.ROCKSDB,
    create_topics: bool = typer.Option(True, help="Create missing pipeline topics first."),
    allow_create_time: bool = typer.Option(
        False,
        help="Accept a raw topic stamped with the producers' CreateTime: received time, "
        "timeliness and key revocation then take a time the sender chose. Only to replay "
        "recorded or simulated history (tests, the demo): development mode only.",
    ),
    log_level: str = typer.Option("INFO", help="Worker log level."),
    dev: bool = typer.Option(False, "--dev", help="Development mode (same as `tuyen --dev`)."),
) -> None:
    """Run a stream worker until SIGTERM/SIGINT (drains the batch in flight and commits).

    Needs TUYEN_KEY_REGISTRY and TUYEN_PSEUDONYM_KEY, unless in development mode, and a raw
    topic with LogAppendTime and the partition count it is told."""
    from streams.app import run_worker
    from streams.config import StreamsConfig

    s = settings(ctx)
    if dev and not s.dev:
        s = s.model_copy(update={"dev": True})
    if allow_create_time:
        require_development(
            s, "tuyen streams worker --allow-create-time", "trusts the producers' clocks"
        )
    anchors = worker_anchors(s)
    conn = kafka(ctx, bootstrap)
    prefix = s.topic_prefix if topic_prefix is None else topic_prefix
    specs = topic_specs(
        prefix,
        s.topic_partitions,
        record_topics=s.record_topics,
        dlq_retention_days=s.dlq_retention_days,
    )
    raw_partitions = partitions or next(
        p.partitions for p in specs if p.name == topic_name(RAW, prefix)
    )
    if create_topics:
        apply_topics(conn, specs)
    config = StreamsConfig(
        kafka=conn,
        development=anchors.development,
        app_id=app_id,
        topic_prefix=prefix,
        partitions=raw_partitions,
        record_topics=s.record_topics,
        publish_valid=publish_valid,
        pseudonym_key=anchors.pseudonym_key,
        key_registry_path=anchors.key_registry_path,
        facilities_path=anchors.facilities_path,
        batch_size=batch_size,
        batch_within_s=batch_within,
        verify_threads=verify_threads,
        verify_processes=verify_processes,
        overlap_checkpoint=overlap_checkpoint,
        web_enabled=web_port > 0,
        web_port=web_port or 6066,
        web_host=web_host,
        broker_session_timeout_s=session_timeout,
        broker_heartbeat_interval_s=max(0.5, session_timeout / 10),
        data_dir=data_dir or str(s.home / "streams" / (prefix + app_id)),
        state_store=state_store.value,
    )
    _check_raw_topic(conn, config.topic(RAW), raw_partitions, allow_create_time)
    # faust declares its internal topics itself, but a consumer that subscribes before the
    # metadata has spread "ignores the missing topic" and never consumes it (seen: live
    # aggregates never published): create them first
    apply_topics(conn, config.internal_topic_specs())
    run_worker(config, log_level)


def _check_raw_topic(
    conn: KafkaConnection, topic: str, partitions: int, allow_create_time: bool
) -> None:
    """Refuse (:class:`ConfigError`, exit 2, naming each problem) a raw topic that is missing,
    has another partition count, or lacks LogAppendTime (unless replaying history)."""
    problems = raw_topic_problems(conn, topic, partitions)
    if allow_create_time:
        logger.warning(
            "ALLOW-CREATE-TIME: received times are whatever the producers wrote (replay only)"
        )
        problems = [p for p in problems if "LogAppendTime" not in p]
    if problems:
        raise ConfigError("the stream worker refuses to start: " + "; ".join(problems))


@aggregates_app.command("show")
def show(
    ctx: typer.Context,
    unit: str = typer.Option(None, help="Unit code (station, district, province, VN)."),
    period: str = typer.Option(None, help="Period YYYY-MM."),
    element: str = typer.Option(None, help="Data element."),
    bootstrap: Bootstrap = None,
    topic_prefix: str = typer.Option(None, help="Topic prefix (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Print the live aggregates (latest values from the compacted topic)."""
    import orjson
    from rich.table import Table

    from streams.live import read_live_aggregates

    s = settings(ctx)
    prefix = s.topic_prefix if topic_prefix is None else topic_prefix
    rows = read_live_aggregates(
        kafka(ctx, bootstrap),
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
    out.print(table)
