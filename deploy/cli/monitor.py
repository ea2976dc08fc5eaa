"""`tuyen lag` and `tuyen monitor serve`.

Exit codes of `tuyen lag --check`: 0 every group OK, 1 some group WARN or ERR (STOP, STALL,
REWIND), 2 no broker. Without ``--check`` the command exits 0 whenever it could report.

`tuyen monitor serve` listens on 127.0.0.1 unless ``--host`` says otherwise; then it requires
``TUYEN_MONITOR_TOKEN`` (or ``_FILE``) and refuses to start without one.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich.table import Table

from deploy.cli.common import console, fail, kafka, out, settings
from streams.monitor.burrow import DEFAULT_WINDOW, Status
from streams.monitor.config import MonitorConfig
from streams.monitor.model import Snapshot

__all__ = ["LagFormat", "lag", "monitor_app"]

monitor_app = typer.Typer(help="Operators' monitor: lag, status page, Prometheus metrics.")

_Groups = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this group (repeat).")
]
_STYLE = {Status.OK: "green", Status.WARN: "yellow"}


class LagFormat(StrEnum):
    """How `tuyen lag` prints."""

    TABLE = "table"
    JSON = "json"


def _config(
    ctx: typer.Context,
    bootstrap: str | None,
    groups: list[str] | None,
    prefix: str | None,
    window: int,
) -> MonitorConfig:
    s = settings(ctx)
    return MonitorConfig(
        kafka=kafka(ctx, bootstrap),
        topic_prefix=s.topic_prefix,
        groups=tuple(groups or ()),
        group_prefix=s.topic_prefix if prefix is None else prefix,
        window=window,
    )


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
                f"{p.lag_seconds:.1f}",
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
    check: bool = typer.Option(False, help="Exit 1 when any group is not OK."),
    window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
    bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
) -> None:
    """Consumer lag per group and partition, in messages and seconds, with Burrow status."""
    from streams.monitor.service import Monitor

    monitor = Monitor(_config(ctx, bootstrap, group, prefix, window), health=False)
    try:
        snap = monitor.collect()
    finally:
        monitor.clients.close()
    if fmt is LagFormat.JSON:
        out.print_json(orjson.dumps(snap.as_dict()).decode())
    else:
        out.print(_table(snap))
    if check and not snap.all_ok:
        raise typer.Exit(1)


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
    bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
) -> None:
    """Serve / (status page), /metrics (Prometheus) and /api/status (JSON); /healthz for
    probes. With a token every other path needs ``Authorization: Bearer <token>`` or
    ``?token=<token>``."""
    from streams.monitor.server import MonitorServer, is_loopback
    from streams.monitor.service import Monitor

    s = settings(ctx)
    token = s.monitor_token
    if token is None and not is_loopback(host):
        fail(
            f"TUYEN_MONITOR_TOKEN is not set: the monitor would serve {host} to anyone; set it "
            "(or TUYEN_MONITOR_TOKEN_FILE), or listen on 127.0.0.1"
        )
    config = _config(ctx, bootstrap, group, prefix, window)
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
