"""`tuyen lag` and `tuyen monitor serve`.

Exit codes of `tuyen lag --check`: 0 every group OK, 1 some group WARN or ERR (STOP, STALL,
REWIND), 2 no broker. Without ``--check`` the command exits 0 whenever it could report.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from streams.monitor.burrow import DEFAULT_WINDOW, Status
from streams.monitor.config import MonitorConfig
from streams.monitor.model import Snapshot
from streams.monitor.server import MonitorServer
from streams.monitor.service import Monitor

__all__ = ["register"]

console = Console(stderr=True)
out = Console()

_Groups = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this group (repeat).")
]
_STYLE = {Status.OK: "green", Status.WARN: "yellow"}


def _bootstrap(given: str | None) -> str:
    if given:
        return given
    from deploy.cli import require_bootstrap, settings  # late: deploy.cli imports us

    return require_bootstrap(settings())


def _config(
    bootstrap: str | None, groups: list[str] | None, prefix: str | None, window: int
) -> MonitorConfig:
    from deploy.settings import Settings

    s = Settings()
    return MonitorConfig(
        bootstrap=_bootstrap(bootstrap),
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


def register(app: typer.Typer) -> None:
    """Add `lag` and `monitor serve` to the root `tuyen` app."""
    monitor_app = typer.Typer(help="Operators' monitor: lag, status page, Prometheus metrics.")
    app.add_typer(monitor_app, name="monitor")

    @app.command("lag")
    def lag(
        group: _Groups = None,
        prefix: str = typer.Option(
            None, help="Only groups starting with this (default: TUYEN_TOPIC_PREFIX)."
        ),
        fmt: str = typer.Option("table", "--format", help="table or json."),
        check: bool = typer.Option(False, help="Exit 1 when any group is not OK."),
        window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
        bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
    ) -> None:
        """Consumer lag per group and partition, in messages and seconds, with Burrow status."""
        if fmt not in ("table", "json"):
            raise typer.BadParameter("--format must be table or json")
        monitor = Monitor(_config(bootstrap, group, prefix, window), health=False)
        try:
            snap = monitor.collect()
        finally:
            monitor.clients.close()
        if fmt == "json":
            out.print_json(orjson.dumps(snap.as_dict()).decode())
        else:
            out.print(_table(snap))
        if check and not snap.all_ok:
            raise typer.Exit(1)

    @monitor_app.command("serve")
    def serve(
        port: int = typer.Option(None, help="Port (default: TUYEN_MONITOR_PORT, 9308)."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        interval: float = typer.Option(10.0, help="Seconds between collections."),
        group: _Groups = None,
        prefix: str = typer.Option(None, help="Only groups starting with this."),
        window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
        bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
    ) -> None:
        """Serve / (status page), /metrics (Prometheus) and /api/status (JSON)."""
        from deploy.settings import Settings

        config = _config(bootstrap, group, prefix, window)
        server = MonitorServer(
            Monitor(config),
            host=host,
            port=Settings().monitor_port if port is None else port,
            refresh_s=max(1, round(interval)),
        )
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        server.start(interval)
        console.print(f"monitor on http://{host}:{server.port}/ (metrics at /metrics)")
        done.wait()
        server.stop()
