"""`tuyen lag` and `tuyen monitor serve`.

Exit codes of `tuyen lag`: with ``--check`` 0 every group OK, 1 some group WARN or ERR
(STOP, STALL, REWIND), 2 unknown: a named group was not found (NOTFOUND) and no group is
WARN/ERR. Without ``--check`` it exits 0 whenever it could report. Either way 2 when there is
no broker or it does not answer.

`tuyen monitor serve` listens on 127.0.0.1 unless ``--host`` says otherwise; then it requires
``TUYEN_MONITOR_TOKEN`` (or ``_FILE``) and refuses to start without one.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from typing import Annotated, NoReturn

import orjson
import typer
from rich.table import Table

from deploy.broker.state import local_metrics_urls
from deploy.cli.common import EXIT_USAGE, Bootstrap, console, fail, kafka, out, settings
from schemas.kafka import KafkaConnection, KafkaUnreachable
from streams.monitor.burrow import DEFAULT_WINDOW, Status
from streams.monitor.config import MonitorConfig
from streams.monitor.model import Snapshot

__all__ = ["LagFormat", "lag", "monitor_app"]

monitor_app = typer.Typer(help="Operators' monitor: lag, status page, Prometheus metrics.")

_Groups = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this group (repeat).")
]
_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.NOTFOUND: "magenta"}


class LagFormat(StrEnum):
    """How `tuyen lag` prints."""

    TABLE = "table"
    JSON = "json"


def _config(
    ctx: typer.Context,
    conn: KafkaConnection,
    groups: list[str] | None,
    prefix: str | None,
    window: int,
    **more: object,
) -> MonitorConfig:
    s = settings(ctx)
    return MonitorConfig.model_validate(
        {
            "kafka": conn,
            "topic_prefix": s.topic_prefix,
            "groups": tuple(groups or ()),
            "group_prefix": s.topic_prefix if prefix is None else prefix,
            "window": window,
            **more,
        }
    )


def _unreachable(error: object) -> NoReturn:
    fail(f"broker unreachable: {error}", EXIT_USAGE)


def _table(snap: Snapshot) -> Table:
    table = Table("group", "status", "topic", "p", "committed", "end", "lag", "lag s", "p status")
    for g in snap.groups:
        style = _STYLE.get(g.status, "red")
        first = True
        for p in g.partitions:
            table.add_row(
                g.group if first else "",
                f"[{style}]{g.status.value}[/{style}]" if first else "",
                p.topic,
                str(p.partition),
                str(p.committed),
                str(p.end_offset),
                str(p.lag),
                "?" if p.lag_seconds is None else f"{p.lag_seconds:.1f}",
                f"[{_STYLE.get(p.status, 'red')}]{p.status.value}[/]",
            )
            first = False
        if not g.partitions:
            table.add_row(g.group, f"[{style}]{g.status.value}[/{style}]", *[""] * 7)
    return table


def lag(
    ctx: typer.Context,
    group: _Groups = None,
    prefix: str = typer.Option(
        None, help="Only groups starting with this (default: TUYEN_TOPIC_PREFIX)."
    ),
    fmt: Annotated[LagFormat, typer.Option("--format", help="table or json.")] = LagFormat.TABLE,
    check: bool = typer.Option(
        False, help="Exit 1 when a group is WARN/ERR, 2 when a named group is not found."
    ),
    window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
    allowed_lag: int = typer.Option(0, help="Lag (messages) that still counts as OK."),
    min_complete: float = typer.Option(
        0.0, help="Partitions whose window is less full than this (0..1) count as OK."
    ),
    bootstrap: Bootstrap = None,
) -> None:
    """Consumer lag per group and partition, in messages and seconds, with Burrow status."""
    from confluent_kafka import KafkaException

    from streams.monitor.exceptions import MonitorError
    from streams.monitor.service import Monitor

    try:
        conn = kafka(ctx, bootstrap)
    except KafkaUnreachable as exc:
        _unreachable(exc.message)
    config = _config(
        ctx, conn, group, prefix, window, allowed_lag=allowed_lag, min_complete=min_complete
    )
    monitor = Monitor(config, health=False)
    try:
        snap = monitor.collect()
    except (MonitorError, KafkaException) as exc:
        _unreachable(exc)
    finally:
        monitor.clients.close()
    if fmt is LagFormat.JSON:
        out.print_json(orjson.dumps(snap.as_dict()).decode())
    else:
        out.print(_table(snap))
    if check and snap.exit_code:
        raise typer.Exit(snap.exit_code)


@monitor_app.command("serve")
def serve(
    ctx: typer.Context,
    port: int = typer.Option(None, help="Port (default: TUYEN_MONITOR_PORT, 9308)."),
    host: str = typer.Option(
        "127.0.0.1",
        help="Address to listen on. Off loopback, TUYEN_MONITOR_TOKEN (or _FILE) is required.",
    ),
    interval: float = typer.Option(10.0, help="Seconds between collections."),
    group: _Groups = None,
    prefix: str = typer.Option(None, help="Only groups starting with this."),
    window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
    allowed_lag: int = typer.Option(0, help="Lag (messages) that still counts as OK."),
    min_complete: float = typer.Option(0.0, help="Window fill (0..1) below which OK."),
    broker_metrics: Annotated[
        list[str] | None,
        typer.Option(
            help="A broker's JMX exporter /metrics URL, optionally '<node id>=<url>' (repeat; "
            "default: the local cluster's, when `tuyen broker up --brokers 3` started one)."
        ),
    ] = None,
    cluster: str = typer.Option("tuyen", help="Cluster name in the Burrow-compatible API."),
    bootstrap: Bootstrap = None,
) -> None:
    """Serve / (status page), /group/<g>, /metrics (Prometheus), /api/status (JSON) and
    Burrow's /v3/kafka read API; /healthz for probes. With a token every other path needs
    ``Authorization: Bearer <token>`` or ``?token=<token>``."""
    from streams.monitor.server import MonitorServer, is_loopback
    from streams.monitor.service import Monitor

    s = settings(ctx)
    token = s.monitor_token
    if token is None and not is_loopback(host):
        fail(
            f"TUYEN_MONITOR_TOKEN is not set: the monitor would serve {host} to anyone; set it "
            "(or TUYEN_MONITOR_TOKEN_FILE), or listen on 127.0.0.1"
        )
    config = _config(
        ctx,
        kafka(ctx, bootstrap),
        group,
        prefix,
        window,
        allowed_lag=allowed_lag,
        min_complete=min_complete,
        offset_refresh_s=interval,
        broker_metrics=tuple(broker_metrics or ([] if bootstrap else local_metrics_urls(s))),
        cluster_name=cluster,
    )
    server = MonitorServer(
        Monitor(config),
        host=host,
        port=s.monitor_port if port is None else port,
        refresh_s=max(1, round(interval)),
        token=token,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start(interval)
    auth = "bearer token required" if token is not None else "no token: loopback only"
    console.print(f"monitor on http://{host}:{server.port}/ (metrics at /metrics; {auth})")
    done.wait()
    server.stop()
