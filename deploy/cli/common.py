"""What every `tuyen` command shares: the consoles, progress bars, the settings built once by
the root callback (typer's context object), the Kafka connection, logging, exit codes."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from deploy.broker.state import require_connection
from deploy.settings import Settings
from schemas.kafka import KafkaConnection, check_connection
from schemas.topics import RAW, topic_name

if TYPE_CHECKING:
    from sinks.reports.access import AccessLog

__all__ = [
    "EXIT_USAGE",
    "Bootstrap",
    "CliState",
    "StoreRoot",
    "console",
    "fail",
    "kafka",
    "out",
    "progress",
    "raw_target",
    "settings",
    "setup_logging",
    "store_access_log",
]

#: stderr: messages, progress, errors. stdout: results (tables, JSON, addresses).
console = Console(stderr=True)
out = Console()

EXIT_USAGE = 2  # usage or configuration error, no broker

#: ``--bootstrap`` of every command that talks to Kafka (read by :func:`kafka`).
Bootstrap = Annotated[
    str | None, typer.Option(help="Kafka bootstrap (default: the configured or local broker)")
]
#: ``--store-root`` of the commands that read or write one store root.
StoreRoot = Annotated[str | None, typer.Option(help="store root (default TUYEN_STORE_ROOT)")]


@dataclass(frozen=True, slots=True)
class CliState:
    """The context object: the settings, read once from the environment by the root callback."""

    settings: Settings


def settings(ctx: typer.Context) -> Settings:
    """The settings the root callback built (``tuyen --dev`` included)."""
    state = ctx.find_object(CliState)
    if state is None:
        raise RuntimeError("a tuyen command runs under the root app (deploy.cli.root.app)")
    return state.settings


def kafka(ctx: typer.Context, bootstrap: str | None = None) -> KafkaConnection:
    """The one Kafka connection of this command: ``--bootstrap`` when given (with the
    ``TUYEN_KAFKA_*`` security settings), else the configured or `tuyen broker up` broker.
    Checked once: unreachable brokers or refused credentials stop the command with the
    reason (``KafkaUnreachable``)."""
    s = settings(ctx)
    conn = s.kafka_connection(bootstrap) if bootstrap else require_connection(s)
    check_connection(conn)
    return conn


def raw_target(ctx: typer.Context, topic: str | None) -> tuple[KafkaConnection, str]:
    """Where stations' changes go: the Kafka connection (checked) and ``topic``, by default
    the raw topic (``station.changes`` with the configured prefix)."""
    return kafka(ctx), topic or topic_name(RAW, settings(ctx).topic_prefix)


def store_access_log(ctx: typer.Context, store_root: str) -> AccessLog:
    """The access log of every data request on the stores under ``store_root`` (reports,
    patient summaries, exports): at ``Settings.access_log_path``, its hash chain keyed with
    ``TUYEN_ACCESS_LOG_KEY`` when set (``deploy.anchors.access_log_key``)."""
    from deploy.anchors import access_log_key
    from sinks.reports.access import AccessLog

    s = settings(ctx)
    return AccessLog(s.access_log_path(store_root), key=access_log_key(s))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def progress(*extra: ProgressColumn) -> Progress:
    """A progress display on stderr: description, bar, n/total, ``extra`` columns, time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        console=console,
    )


def setup_logging(level: str) -> None:
    """Key=value log lines on stderr at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
