"""`tuyen demo`: the main job, end to end (development mode: `tuyen --dev demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from deploy.cli.common import settings
from deploy.demo import DEFAULT_PROVINCES, DemoOptions, run_demo

__all__ = ["demo"]

_DEFAULT = DemoOptions()  # the options' defaults are the demo's own (declared once, there)


def demo(
    ctx: typer.Context,
    provinces: str = typer.Option(",".join(DEFAULT_PROVINCES), help="Province codes."),
    days: int = typer.Option(_DEFAULT.days, help="Simulated days (ending yesterday)."),
    scale: float = typer.Option(
        _DEFAULT.scale, help="Share of each commune's population simulated."
    ),
    activity: float = typer.Option(_DEFAULT.activity, help="Multiplier of every per-person rate."),
    bad_fraction: float = typer.Option(
        _DEFAULT.bad_fraction, help="Share of deliberately bad events."
    ),
    seed: int = typer.Option(_DEFAULT.seed),
    workers: int = typer.Option(_DEFAULT.workers, help="Stream worker processes."),
    brokers: int = typer.Option(
        _DEFAULT.brokers, min=1, max=9, help="Local brokers: 3 runs a KRaft cluster with RF 3."
    ),
    out: Path = typer.Option(_DEFAULT.out, help="Output folder."),  # noqa: B008
    keep_running: bool = typer.Option(
        False, help="Keep the pipeline and the portal up after the reports."
    ),
    portal_port: int = typer.Option(
        _DEFAULT.portal_port, help="Port of the demo's portal (--keep-running)."
    ),
    legacy_stations: int = typer.Option(
        _DEFAULT.legacy_stations,
        help="Stations that feed the pipeline only through Decision 130 XML files.",
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Debugging only: a PLAINTEXT broker without principals or ACLs (default: TLS, "
        "SCRAM-SHA-512 and an ACL'd principal for every service).",
    ),
) -> None:
    """Run the main job: broker, topics, pipeline, simulated stations, reports.

    Development mode only (its stations sign with the development keys): `make demo` runs
    `tuyen --dev demo`."""
    opts = DemoOptions(
        provinces=tuple(p.strip() for p in provinces.split(",") if p.strip()),
        days=days,
        scale=scale,
        activity=activity,
        bad_fraction=bad_fraction,
        seed=seed,
        workers=workers,
        brokers=brokers,
        out=out,
        legacy_stations=legacy_stations,
        keep_running=keep_running,
        portal_port=portal_port,
        secure=not insecure,
    )
    run_demo(settings(ctx), opts)
