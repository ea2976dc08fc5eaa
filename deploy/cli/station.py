"""`tuyen publish` and `tuyen simulate`: the `producers` package from the command line.

Exit codes of `tuyen publish`: 0 published (or valid with --dry-run), 1 bad lines and nothing
published, 2 usage error or no broker, 3 Kafka did not confirm every event.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deploy.anchors import require_development
from deploy.cli.common import console, fail, out, progress, raw_target, settings
from producers.config import DEV_KEY_SEED, DEV_SIGNERS_PER_STATION, SimulationConfig

__all__ = ["Destination", "publish", "simulate"]

EXIT_BAD_LINES = 1
EXIT_DELIVERY = 3


class Destination(StrEnum):
    """Where `tuyen simulate` writes."""

    KAFKA = "kafka"
    OUTBOX = "outbox"
    JSONL = "jsonl"


def publish(
    ctx: typer.Context,
    file: Path = typer.Option(..., "--file", "-f", exists=True, dir_okay=False, help="JSONL."),  # noqa: B008
    topic: str | None = typer.Option(None, help="Target topic (default: station.changes)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate only, publish nothing."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Publish the good lines anyway."),
    keys: Path | None = typer.Option(None, help="Key registry JSON: verify every signature."),  # noqa: B008
    dev_keys: bool = typer.Option(False, "--dev-keys", help="Verify with the dev key registry."),
    max_shown: int = typer.Option(50, help="Bad lines listed in the table."),
) -> None:
    """Validate every line of a CloudEvents JSON Lines file, then publish all of it (or none)."""
    import orjson

    from producers.publish import validate_file
    from schemas import DevKeyRegistry, KeyRegistry, StaticKeyRegistry

    registry: KeyRegistry | None = None
    if keys is not None and dev_keys:
        fail("give --keys or --dev-keys, not both")
    if keys is not None:
        registry = StaticKeyRegistry.load(keys)
    elif dev_keys:
        require_development(
            settings(ctx), "tuyen publish --dev-keys", "verifies with the development keys"
        )
        registry = DevKeyRegistry(DEV_KEY_SEED, signers_per_station=DEV_SIGNERS_PER_STATION)
    size = file.stat().st_size
    with progress() as bars:
        task = bars.add_task(f"validating {size / 1e6:.1f} MB", total=None)
        report = validate_file(file, registry=registry, tick=lambda k: bars.advance(task, k))
        bars.update(task, completed=report.total + report.blank, total=report.total)
    if not report.signatures_checked:
        console.print("[yellow]no key registry given: signatures not verified[/yellow]")
    if report.bad:
        table = Table("line", "reason", "message", "event id", title=f"{len(report.bad)} bad lines")
        for b in report.bad[:max_shown]:
            table.add_row(str(b.line), b.reason.value, b.message, b.event_id or "")
        out.print(table)
        if len(report.bad) > max_shown:
            console.print(f"... and {len(report.bad) - max_shown} more")
        if not skip_bad:
            console.print(
                f"[red]{len(report.bad)} of {report.total} lines are bad: nothing published[/red]"
                " (fix them, or pass --skip-bad)"
            )
            raise typer.Exit(EXIT_BAD_LINES)
    if dry_run:
        console.print(f"dry run: {len(report.good)} valid, {len(report.bad)} bad, nothing sent")
        return
    from producers.exceptions import DeliveryError
    from producers.writers import produce_messages

    conn, target = raw_target(ctx, topic)
    with progress() as bars:
        task = bars.add_task(f"publishing to {target}", total=len(report.good))
        try:
            produce_messages(report.good, conn, target, tick=lambda k: bars.advance(task, k))
        except DeliveryError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(EXIT_DELIVERY) from exc
    skipped = f", skipped {len(report.bad)} bad lines" if report.bad else ""
    out.print(orjson.dumps({"published": len(report.good), "skipped": len(report.bad)}).decode())
    console.print(f"published {len(report.good)} events to {target}{skipped}")


def simulate(
    ctx: typer.Context,
    stations: int = typer.Option(10, "--stations", "-n", help="How many stations (sampled)."),
    provinces: str = typer.Option("", help="Comma-separated province codes, e.g. 01,02."),
    station: list[str] = typer.Option([], "--station", help="Explicit station codes."),  # noqa: B008
    all_stations: bool = typer.Option(False, "--all", help="Every station of --provinces."),
    days: int = typer.Option(30, "--days", "-d"),
    start: str | None = typer.Option(None, help="First day YYYY-MM-DD (default: days ago)."),
    seed: int = typer.Option(1),
    scale: float = typer.Option(0.05, help="Share of each commune's population simulated."),
    activity: float = typer.Option(1.0, help="Multiplier of every per-person rate."),
    bad_fraction: float = typer.Option(0.0, help="Share of deliberately bad events."),
    to: Annotated[Destination, typer.Option("--to", help="Where the events go.")] = (
        Destination.KAFKA
    ),
    file: Path | None = typer.Option(None, "--file", "-f", help="Output file for --to jsonl."),  # noqa: B008
    topic: str | None = typer.Option(None, help="Target topic (default: station.changes)."),
    outbox_dir: Path | None = typer.Option(None, help="Outboxes for --to outbox."),  # noqa: B008
) -> None:
    """Deterministic synthetic activity of real stations (same seed, same events).

    Signed with the development keys: development mode only (`tuyen --dev simulate`)."""
    from producers.simulator import simulate as run_simulation
    from producers.writers import write_jsonl, write_kafka, write_outboxes

    if to is Destination.JSONL and file is None:
        fail("--to jsonl needs --file")
    s = settings(ctx)
    require_development(s, "tuyen simulate", "signs with the development keys")
    first = start or (date.today() - timedelta(days=days + 1)).isoformat()
    cfg = SimulationConfig(
        seed=seed,
        stations=tuple(station),
        provinces=tuple(p.strip() for p in provinces.split(",") if p.strip()),
        n_stations=None if (all_stations or station) else stations,
        start=first,
        days=days,
        scale=scale,
        activity_scale=activity,
        bad_fraction=bad_fraction,
        keep_truth=False,
    )
    started = time.monotonic()
    with progress() as bars:
        day_task = bars.add_task("days", total=days)
        ev_task = bars.add_task("events", total=None)
        result = run_simulation(
            cfg, progress=lambda done, _total: bars.update(day_task, completed=done)
        )
        console.print(f"{len(result.stations)} stations from {first}, {days} days, seed {seed}")

        def tick(k: int) -> None:
            bars.advance(ev_task, k)

        if to is Destination.JSONL:
            assert file is not None
            n = write_jsonl(result.events, file, tick=tick)
        else:
            conn, target = raw_target(ctx, topic)
            if to is Destination.KAFKA:
                n = write_kafka(result.events, conn, target, tick=tick)
            else:
                root = outbox_dir or s.home / "outboxes"
                n = write_outboxes(result.events, conn, target, root, tick=tick)
    elapsed = time.monotonic() - started
    table = Table("event type", "count", title=f"{n:,} events in {elapsed:.1f}s")
    for name, count in sorted(result.truth.counts.items()):
        table.add_row(name, f"{count:,}")
    table.add_row("bad (deliberate)", f"{len(result.truth.bad_event_ids):,}")
    table.add_row("late (offline stations)", f"{len(result.truth.late_event_ids):,}")
    out.print(table)
    console.print(f"{n / elapsed:,.0f} events/s")
