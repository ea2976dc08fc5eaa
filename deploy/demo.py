"""`tuyen demo`: the main job, end to end, on a real broker.

Provision the broker, apply the topics, start the stream workers and the tier sinks,
simulate a slice of the country (real provinces with all their communes, each station with
its history and its own remote or lowland habits), wait until every consumer group has caught
up, sign off the last ended month of the first province (its regional centres approve the
submitted station reports, the province locks the month), send the paper registers that are
back-entered after that, print the national and one province's reports (latest, with the
revisions since the sign-off), write the HTML/FHIR reports and the DuckDB catalogs to a
folder, and stop everything it started.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from deploy.broker import BrokerHandle, provision
from deploy.pipeline import Pipeline
from deploy.settings import Settings
from deploy.topics import apply_topics
from schemas.topics import RAW, topic_name, topic_specs

if TYPE_CHECKING:
    from producers.simulator import SimEvent

logger = logging.getLogger(__name__)
console = Console()

DEFAULT_PROVINCES = ("04", "11", "12")  # Cao Bằng, Điện Biên, Lai Châu: 139 communes


@dataclass(frozen=True)
class DemoOptions:
    """What the demo simulates and where it writes."""

    provinces: tuple[str, ...] = DEFAULT_PROVINCES
    days: int = 60
    scale: float = 0.5
    activity: float = 1.0
    bad_fraction: float = 0.001
    seed: int = 1
    workers: int = 1
    partitions: int = 6
    out: Path = Path("tuyen-demo")
    keep_running: bool = False
    catch_up_timeout_s: float = 1800.0


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _broker(s: Settings) -> tuple[BrokerHandle, str]:
    """A fresh broker (local: new data each run) or a fresh topic prefix on an existing one."""
    if s.kafka_bootstrap or s.broker_mode in {"external", "container"}:
        handle = provision(
            mode=s.broker_mode, kafka_bootstrap=s.kafka_bootstrap, home=s.home, state_name="demo"
        )
        return handle, f"{s.topic_prefix}demo-{uuid.uuid4().hex[:8]}."
    shutil.rmtree(s.home / "brokers" / "demo", ignore_errors=True)
    # the workers' local state (dedupe, versions) belongs to that broker: without this a
    # second demo finds every event a duplicate of the first's and stores nothing
    for stale in (s.home / "streams").glob(f"{s.topic_prefix}worker-*"):
        shutil.rmtree(stale, ignore_errors=True)
    handle = provision(
        mode="local", kafka_bootstrap=None, home=s.home, state_name="demo", tie_to_parent=True
    )
    return handle, s.topic_prefix


LATE_SHARE = 0.03  # records back-entered after the sign-off (their month shows revisions)


def _simulate(opts: DemoOptions, bootstrap: str, prefix: str) -> tuple[int, str, list[SimEvent]]:
    """Publish everything but the records entered after the sign-off of the report month;
    return the count, that month and the records held back."""
    from deploy.demo_reports import report_month
    from producers.config import SimulationConfig
    from producers.simulator import entered_late, simulate
    from producers.writers import write_kafka

    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=opts.days - 1)
    cfg = SimulationConfig(
        seed=opts.seed,
        provinces=opts.provinces,
        start=start.isoformat(),
        days=opts.days,
        scale=opts.scale,
        activity_scale=opts.activity,
        bad_fraction=opts.bad_fraction,
        keep_truth=False,
    )
    result = simulate(cfg)
    month = report_month(end)
    held: list[SimEvent] = []

    def first_pass() -> Iterator[SimEvent]:
        for ev in result.events:
            if entered_late(ev, month, LATE_SHARE):
                held.append(ev)
            else:
                yield ev

    console.print(
        f"simulating {len(result.stations)} stations of provinces {', '.join(opts.provinces)} "
        f"from {start} to {end}"
    )
    started = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("publishing events", total=None, rate="")

        def tick(n: int) -> None:
            done = progress.tasks[0].completed + n
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, advance=n, rate=f"{rate:,.0f} ev/s")

        n = write_kafka(first_pass(), bootstrap, topic_name(RAW, prefix), tick=tick, stamped=True)
    console.print(f"published {n:,} events in {time.monotonic() - started:.0f}s")
    return n, month, held


def _wait(pipeline: Pipeline, opts: DemoOptions) -> None:
    started = time.monotonic()
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}
        peak: dict[str, int] = {}

        def show(remaining: dict[str, int]) -> None:
            for group, left in remaining.items():
                peak[group] = max(peak.get(group, 0), left)
                if group not in tasks:
                    tasks[group] = progress.add_task(group, total=1, rate="")
                done = peak[group] - left
                progress.update(
                    tasks[group], total=max(peak[group], 1), completed=done, rate=f"lag {left:,}"
                )

        pipeline.wait_caught_up(opts.catch_up_timeout_s, on_progress=show)
    console.print(f"every consumer group caught up in {time.monotonic() - started:.0f}s")


def run_demo(s: Settings, opts: DemoOptions) -> Path:
    """Run the demo; returns the output folder."""
    from deploy.demo_reports import sign_off, write_reports
    from producers.writers import write_kafka

    began = time.monotonic()

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally below: stop what we started

    signal.signal(signal.SIGTERM, _terminate)
    out = opts.out.resolve()
    for sub in ("store", "reports", "logs"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for stale in out.glob("catalog-*.duckdb"):
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    handle, prefix = _broker(s)
    pipeline = Pipeline(
        bootstrap=handle.bootstrap,
        prefix=prefix,
        store_root=out / "store",
        log_dir=out / "logs",
        home=s.home,
        workers=opts.workers,
        sink_args=("--flush-interval", "2"),
    )
    try:
        console.print(f"broker: {handle.mode} at {handle.bootstrap} (topic prefix {prefix!r})")
        apply_topics(handle.bootstrap, topic_specs(prefix, opts.partitions))
        pipeline.start()
        console.print(f"started {', '.join(pipeline.services)} (logs in {out / 'logs'})")
        n, month, held = _simulate(opts, handle.bootstrap, prefix)
        _wait(pipeline, opts)
        sign_off(out, opts.provinces[0], month, handle.bootstrap, prefix, console)
        n += write_kafka(held, handle.bootstrap, topic_name(RAW, prefix))
        console.print(f"published {len(held):,} records back-entered after the sign-off")
        _wait(pipeline, opts)
        write_reports(out, opts.provinces[0], month, console)
        console.print(
            f"[bold green]demo done[/bold green]: {n:,} events in "
            f"{time.monotonic() - began:.0f}s; reports and catalogs in {out}"
        )
        if opts.keep_running:
            console.print("pipeline keeps running; Ctrl-C stops it")
            try:
                while True:
                    pipeline.check_alive()
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        pipeline.stop()
        handle.stop()
    return out


def register(app: typer.Typer) -> None:
    """Add `tuyen demo`."""

    @app.command("demo")
    def demo(
        provinces: str = typer.Option(",".join(DEFAULT_PROVINCES), help="Province codes."),
        days: int = typer.Option(60, help="Simulated days (ending yesterday)."),
        scale: float = typer.Option(0.5, help="Share of each commune's population simulated."),
        activity: float = typer.Option(1.0, help="Multiplier of every per-person rate."),
        bad_fraction: float = typer.Option(0.001, help="Share of deliberately bad events."),
        seed: int = typer.Option(1),
        workers: int = typer.Option(1, help="Stream worker processes."),
        out: Path = typer.Option(Path("tuyen-demo"), help="Output folder."),  # noqa: B008
        keep_running: bool = typer.Option(False, help="Keep the pipeline up after the reports."),
    ) -> None:
        """Run the main job: broker, topics, pipeline, simulated stations, reports."""
        opts = DemoOptions(
            provinces=tuple(p.strip() for p in provinces.split(",") if p.strip()),
            days=days,
            scale=scale,
            activity=activity,
            bad_fraction=bad_fraction,
            seed=seed,
            workers=workers,
            out=out,
            keep_running=keep_running,
        )
        run_demo(Settings(), opts)
