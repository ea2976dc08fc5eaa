"""`tuyen demo`: the main job, end to end, on a real broker.

Provision the broker, apply the topics, start the stream workers and the tier sinks,
simulate a slice of the country (real provinces with all their communes, each station with
its history and its own remote or lowland habits), wait until every consumer group has
caught up, sign off the last ended month of the first province (its regional centres approve
the submitted station reports, but for one centre's, left for the demo portal's province
account to approve), send the paper registers that are back-entered after that, print the
national and one province's reports (latest, with the revisions since the sign-off), write
the HTML/FHIR reports and the DuckDB catalogs to a folder, and stop everything it started.

A development job: its stations sign with the development keys and its workers use the
development registry and pseudonym key, so it runs in development mode only (``tuyen --dev
demo``, as ``make demo`` does).
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import Progress, TaskID, TextColumn

from deploy.anchors import require_development
from deploy.broker import BrokerHandle, provision
from deploy.broker.state import external_connection
from deploy.cli.common import out as console
from deploy.cli.common import progress
from deploy.demo_legacy import LegacyRun, stored_visits
from deploy.pipeline import Pipeline
from deploy.principals import APPROVER, TOPICS_ADMIN, principals, station_principal
from deploy.settings import Settings
from deploy.topics import apply_topics
from schemas.hierarchy import Hierarchy
from schemas.hierarchy.merger import restate_province
from schemas.kafka import KafkaConnection
from schemas.topics import RAW, replay_specs, topic_name, topic_specs
from sinks.roots import StoreRoots

if TYPE_CHECKING:
    from producers.simulator import SimEvent

logger = logging.getLogger(__name__)

DEFAULT_PROVINCES = ("04", "11", "12")  # Cao Bằng, Điện Biên, Lai Châu: 139 communes


@dataclass(frozen=True)
class DemoOptions:
    """What the demo simulates and where it writes."""

    provinces: tuple[str, ...] = DEFAULT_PROVINCES
    # a year of history through the real pipeline in minutes on 2 cores: 5 % of each
    # commune's people, ~283 k events (population-based rates show ~5 % of their values; the
    # trade between scale, months and minutes, measured: docs/scale.md, "make demo")
    days: int = 365
    scale: float = 0.05
    activity: float = 1.0
    bad_fraction: float = 0.001
    seed: int = 1
    workers: int = 1
    brokers: int = 1
    partitions: int = 6
    out: Path = Path("tuyen-demo")
    legacy_stations: int = 1
    keep_running: bool = False
    catch_up_timeout_s: float = 1800.0
    portal_port: int = 8780
    secure: bool = True


#: The demo's sinks flush open segments this often (their default is for freshness): a flush
#: writes a file (a part of the open segment) in every directory its new rows touch, and a
#: year of history touches a file per month and record type, so frequent flushes multiply
#: the sinks' files and their fixed cost (docs/scale.md, "make demo"); nobody watches
#: freshness while the demo catches up.
SINK_FLUSH_S = 10.0

#: The simulator publishes for all its simulated stations as one station-like principal:
#: ``station-simulator``, with exactly a station's rights (write station.changes).
SIMULATOR = "simulator"


def _progress() -> Progress:
    return progress(TextColumn("{task.fields[rate]}"))


def _broker(s: Settings, brokers: int = 1, secure: bool = True) -> tuple[BrokerHandle, str]:
    """A fresh broker or cluster (local: new data each run; secured unless told otherwise)
    or a fresh topic prefix on an existing one."""
    if s.kafka_bootstrap or (s.broker_mode in {"external", "container"} and not secure):
        handle = provision(
            mode=s.broker_mode, external=external_connection(s), home=s.home, state_name="demo"
        )
        return handle, f"{s.topic_prefix}demo-{uuid.uuid4().hex[:8]}."
    name = "demo" if brokers == 1 else "demo-cluster"
    shutil.rmtree(s.home / "brokers" / name, ignore_errors=True)
    # the workers' local state (dedupe, versions) belongs to that broker: without this a
    # second demo finds every event a duplicate of the first's and stores nothing
    for stale in (s.home / "streams").glob(f"{s.topic_prefix}worker-*"):
        shutil.rmtree(stale, ignore_errors=True)
    handle = provision(
        mode="local",
        external=None,
        home=s.home,
        state_name=name,
        tie_to_parent=True,
        brokers=brokers,
        secure=secure,
    )
    return handle, s.topic_prefix


LATE_SHARE = 0.03  # records back-entered after the sign-off (their month shows revisions)


def _simulate(
    opts: DemoOptions, kafka: KafkaConnection, prefix: str
) -> tuple[int, str, list[SimEvent], LegacyRun | None]:
    """Publish everything but the records entered after the sign-off of the report month
    and the legacy stations' (imported from their Decision 130 files); return the count,
    that month, the records held back and the legacy stations' import."""
    from deploy.demo_legacy import choose_legacy, import_legacy
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
    h = Hierarchy.default()
    provinces = {s: h.lookup(s, start).province.code for s in result.stations}
    legacy = choose_legacy(result.stations, provinces, opts.legacy_stations)
    held: list[SimEvent] = []

    def first_pass() -> Iterator[SimEvent]:
        for ev in result.events:
            if legacy.offer(ev):
                continue
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

        n = write_kafka(first_pass(), kafka, topic_name(RAW, prefix), tick=tick, stamped=True)
    console.print(f"published {n:,} events in {time.monotonic() - started:.0f}s")
    run = None
    if legacy.stations:
        run = import_legacy(legacy, opts.out.resolve(), kafka, topic_name(RAW, prefix), console)
        n += run.published
    return n, month, held, run


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
    """Run the demo (development mode only); returns the output folder."""
    from deploy.demo_portal import (
        approvers_file,
        prepare_portal,
        print_accounts,
        start_portal,
    )
    from deploy.demo_reports import report_month, sign_off, write_reports
    from producers.writers import write_kafka

    require_development(
        s, "tuyen demo", "signs and verifies with the development keys", pseudonym_key=True
    )
    began = time.monotonic()

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally below: stop what we started

    signal.signal(signal.SIGTERM, _terminate)
    out = opts.out.resolve()
    for sub in ("store", "reports", "logs", "xml130", "outboxes"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for stale in out.glob("catalog-*.duckdb"):
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    handle, prefix = _broker(s, opts.brokers, opts.secure)
    # the portal's accounts first: its province account's key goes into the approvers'
    # registry the signoff sink starts with
    month = report_month(date.today() - timedelta(days=1))
    accounts = prepare_portal(out, opts.provinces[0], month)
    approvers = approvers_file(out)
    portal: subprocess.Popen[bytes] | None = None
    url: str | None = None
    owners = sorted({restate_province(p) for p in opts.provinces})
    roots = StoreRoots.under(str(out / "store"))
    pipeline = Pipeline(
        kafka=handle.kafka,
        prefix=prefix,
        store_root=out / "store",
        log_dir=out / "logs",
        home=s.home,
        workers=opts.workers,
        # the demo replays simulated history: each event reaches the raw topic (CreateTime)
        # stamped with when its station entered it, so submissions are on time or late as
        # simulated (the workers are told: --allow-create-time, development mode only)
        worker_args=("--allow-create-time",),
        sink_args=("--flush-interval", str(SINK_FLUSH_S)),
        extra_env={
            "TUYEN_APPROVER_KEYS": str(approvers),
            # the workers check every message's murmur2 partition against the raw topic's count
            "TUYEN_TOPIC_PARTITIONS": str(opts.partitions),
        },
        development=True,
        record_topics="province",
        provinces=owners,
        credentials=handle.connection if handle.secured else None,
        restarts=3,  # as a supervisor would; each restart is logged with its exit code
    )
    if handle.local is not None:  # a new local broker: no worker state from an earlier run
        pipeline.forget_local_state()
    try:
        how = "secured: TLS, SCRAM-SHA-512, ACLs" if handle.secured else "PLAINTEXT"
        console.print(
            f"broker: {handle.mode} at {handle.bootstrap} ({how}; topic prefix {prefix!r})"
        )
        station, _ = station_principal(SIMULATOR, prefix)
        handle.grant(principals(prefix, record_topics="province", stations=(SIMULATOR,)))
        specs = topic_specs(prefix, opts.partitions, record_topics="province")
        apply_topics(handle.connection(prefix + TOPICS_ADMIN), replay_specs(specs, prefix))
        pipeline.start()
        console.print(f"started {', '.join(pipeline.services)} (logs in {out / 'logs'})")
        sim = handle.connection(station)
        n, month, held, legacy = _simulate(opts, sim, prefix)
        _wait(pipeline, opts)
        approver = handle.connection(prefix + APPROVER)
        sign_off(out, roots, opts.provinces[0], month, approver, prefix, console, approvers)
        n += write_kafka(held, sim, topic_name(RAW, prefix))
        console.print(f"published {len(held):,} records back-entered after the sign-off")
        _wait(pipeline, opts)
        write_reports(out, roots, opts.provinces[0], month, console)
        if legacy is not None:
            stored_visits(roots, legacy, console)
        if opts.keep_running:
            portal, url = start_portal(
                out, opts.portal_port, out / "logs" / "portal.log", pipeline.env()
            )
        console.print(
            f"[bold green]demo done[/bold green]: {n:,} events in "
            f"{time.monotonic() - began:.0f}s; reports and catalogs in {out}"
        )
        print_accounts(console, url, out, accounts, prefix)
        if opts.keep_running:
            console.print("pipeline keeps running; Ctrl-C stops it")
            try:
                while True:
                    pipeline.check_alive()
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if portal is not None:
            portal.terminate()
            portal.wait(timeout=30)
        pipeline.stop()
        handle.stop()
    return out
