"""The root `tuyen` app: options every job shares, then each job's commands, registered
plainly. The root callback reads the settings once and hands them down (``ctx.obj``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from deploy.cli import (
    broker,
    contract,
    demo,
    export,
    imports,
    monitor,
    portal,
    privacy,
    report,
    signoff,
    sink,
    station,
    stream,
    summary,
    topics,
)
from deploy.cli.common import CliState, console, setup_logging
from deploy.cli.extras import missing_extra_message
from deploy.settings import Settings
from schemas.exceptions import TuyenError

__all__ = ["app", "run"]


class _RootGroup(TyperGroup):
    """Turns tuyen's own errors into a message and an exit code, for every command, whether
    run as `tuyen` or through typer's test runner: no tracebacks for a refused setting."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TuyenError as exc:
            # one line (log collectors keep it whole); the message is text, not markup
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            if exc.retryable:
                console.print("(this may succeed if tried again)")
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None
        except ModuleNotFoundError as exc:
            message = missing_extra_message(exc)
            if message is None:
                raise
            console.print(f"[red]error:[/red] {message}")
            raise typer.Exit(2) from None


app = typer.Typer(
    name="tuyen",
    cls=_RootGroup,
    help="Health-record change pipeline: stations → Kafka → tiers → Parquet → reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Development mode (or TUYEN_DEV=1): the development key registry and pseudonym "
        "key are allowed. Never with real health records.",
    ),
    log_level: str = typer.Option(None, help="Logging level (default: TUYEN_LOG_LEVEL, WARNING)."),
) -> None:
    s = Settings.load(dev=True) if dev else Settings.load()
    setup_logging(log_level or s.log_level)
    ctx.obj = CliState(s)


app.add_typer(broker.app, name="broker")
app.add_typer(topics.app, name="topics")
app.add_typer(contract.app, name="schemas")
app.command("publish")(station.publish)
app.command("simulate")(station.simulate)
app.command("import")(imports.import_files)
app.add_typer(stream.streams_app, name="streams")
app.add_typer(stream.aggregates_app, name="aggregates")
app.command("sink")(sink.sink)
app.command("compact")(sink.compact)
app.command("catalog")(sink.catalog)
app.add_typer(report.report_app, name="report")
report.report_app.command("status")(signoff.status)
report.report_app.command("submit")(signoff.submit)
report.report_app.command("approve")(signoff.approve)
report.report_app.command("send-back")(signoff.send_back)
report.report_app.command("lock")(signoff.lock)
app.command("summary")(summary.summary)
app.add_typer(export.app, name="export")
app.command("purge")(privacy.purge)
app.add_typer(privacy.dlq_app, name="dlq")
app.add_typer(privacy.national_app, name="national")
app.add_typer(privacy.keys_app, name="keys")
app.add_typer(portal.portal_app, name="portal")
app.command("lag")(monitor.lag)
app.add_typer(monitor.monitor_app, name="monitor")
app.command("demo")(demo.demo)


def run(argv: Sequence[str] | None = None) -> None:
    """Run the app on ``argv`` (default: the command line); exits the process."""
    app(args=list(argv) if argv is not None else None, prog_name="tuyen")
