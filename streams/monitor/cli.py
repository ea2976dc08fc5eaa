"""`tuyen lag` and `tuyen monitor serve`.

Exit codes of `tuyen lag`: with ``--check`` 0 every group OK, 1 some group WARN or ERR
(STOP, STALL, REWIND), 2 unknown: a named group was not found (NOTFOUND) and no group is
WARN/ERR. Without ``--check`` it exits 0 whenever it could report. Either way 2 when there is
no broker or it does not answer.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import orjson
import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from streams.monitor.burrow import DEFAULT_WINDOW, Status
from streams.monitor.config import MonitorConfig
from streams.monitor.exceptions import MonitorError
from streams.monitor.model import Snapshot
from streams.monitor.server import MonitorServer
from streams.monitor.service import Monitor

__all__ = ["register"]

console = Console(stderr=True)
out = Console()

_Groups = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this group (repeat).")
]
_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.NOTFOUND: "magenta"}


def _bootstrap(given: str | None) -> str:
    if given:
        return given
    from deploy.cli import require_bootstrap, settings  # late: deploy.cli imports us

    return require_bootstrap(settings())


def _config(
    bootstrap: str | None,
    groups: list[str] | None,
    prefix: str | None,
    window: int,
    **more: object,
) -> MonitorConfig:
    from deploy.settings import Settings

    s = Settings()
    return MonitorConfig.model_validate(
        {
            "bootstrap": _bootstrap(bootstrap),
            "topic_prefix": s.topic_prefix,
            "groups": tuple(groups or ()),
            "group_prefix": s.topic_prefix if prefix is None else prefix,
            "window": window,
            **{k: v for k, v in more.items() if v is not None},
        }
    )


def _local_broker_metrics(bootstrap: str | None) -> list[str]:
    """The JMX exporter URLs of the cluster `tuyen broker up` started (none otherwise)."""
    if bootstrap:
        return []
    from deploy.cli import local_metrics_urls, settings  # late: deploy.cli imports us

    return local_metrics_urls(settings())


def _unreachable(bootstrap: str, error: object) -> typer.Exit:
    console.print(f"[red]broker {bootstrap} unreachable: {error}[/red]")
    return typer.Exit(2)


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
        check: bool = typer.Option(
            False, help="Exit 1 when a group is WARN/ERR, 2 when a named group is not found."
        ),
        window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
        allowed_lag: int = typer.Option(0, help="Lag (messages) that still counts as OK."),
        min_complete: float = typer.Option(
            0.0, help="Partitions whose window is less full than this (0..1) count as OK."
        ),
        bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
    ) -> None:
        """Consumer lag per group and partition, in messages and seconds, with Burrow status."""
        if fmt not in ("table", "json"):
            raise typer.BadParameter("--format must be table or json")
        config = _config(
            bootstrap, group, prefix, window, allowed_lag=allowed_lag, min_complete=min_complete
        )
        from deploy.broker.probe import broker_answers  # late: deploy imports this package

        if not broker_answers(config.bootstrap, timeout_s=config.request_timeout_s):
            raise _unreachable(config.bootstrap, "no answer to a metadata request")
        monitor = Monitor(config, health=False)
        try:
            snap = monitor.collect()
        except (MonitorError, KafkaException) as exc:
            raise _unreachable(config.bootstrap, exc) from exc
        finally:
            monitor.clients.close()
        if fmt == "json":
            out.print_json(orjson.dumps(snap.as_dict()).decode())
        else:
            out.print(_table(snap))
        if check and snap.exit_code:
            raise typer.Exit(snap.exit_code)

    @monitor_app.command("serve")
    def serve(
        port: int = typer.Option(None, help="Port (default: TUYEN_MONITOR_PORT, 9308)."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        interval: float = typer.Option(10.0, help="Seconds between collections."),
        group: _Groups = None,
        prefix: str = typer.Option(None, help="Only groups starting with this."),
        window: int = typer.Option(DEFAULT_WINDOW, help="Commits per partition evaluated."),
        allowed_lag: int = typer.Option(0, help="Lag (messages) that still counts as OK."),
        min_complete: float = typer.Option(0.0, help="Window fill (0..1) below which OK."),
        broker_metrics: Annotated[
            list[str] | None,
            typer.Option(
                help="A broker's JMX exporter /metrics URL (repeat; default: the local "
                "cluster's, when `tuyen broker up` started one)."
            ),
        ] = None,
        cluster: str = typer.Option("tuyen", help="Cluster name in the Burrow-compatible API."),
        bootstrap: str = typer.Option(None, help="Broker (default: the running dev broker)."),
    ) -> None:
        """Serve / (status page), /metrics (Prometheus), /api/status (JSON) and Burrow's
        /v3/kafka read API."""
        from deploy.settings import Settings

        config = _config(
            bootstrap,
            group,
            prefix,
            window,
            allowed_lag=allowed_lag,
            min_complete=min_complete,
            offset_refresh_s=interval,
            broker_metrics=tuple(broker_metrics or _local_broker_metrics(bootstrap)),
            cluster_name=cluster,
        )
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
