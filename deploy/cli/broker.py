"""`tuyen broker up | status | down`: a real Apache Kafka broker for development."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from deploy.broker import broker_answers, current_connection
from deploy.broker.state import start_default, stop_default
from deploy.cli.common import console, out, settings

__all__ = ["app"]

app = typer.Typer(help="A real Apache Kafka broker for development (KRaft).")


@app.command("up")
def up(
    ctx: typer.Context,
    brokers: int = typer.Option(
        1, min=1, max=9, help="Brokers: 1 (a single node) or 3 (a KRaft cluster, RF 3)."
    ),
) -> None:
    """Start a broker or a local cluster (or use KAFKA_BOOTSTRAP); print the bootstrap."""
    started = time.monotonic()
    got = start_default(settings(ctx), brokers)
    if not got.already_running:
        metrics = f" metrics={','.join(got.metrics_urls)}" if got.metrics_urls else ""
        console.print(
            f"broker ready mode={got.mode} bootstrap={got.kafka.bootstrap}{metrics} "
            f"seconds={time.monotonic() - started:.1f}"
        )
    out.print(got.kafka.bootstrap)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Print the bootstrap address of the running broker; exit 1 when there is none."""
    kafka = current_connection(settings(ctx))
    if kafka is None or not broker_answers(kafka):
        console.print("no broker running")
        raise typer.Exit(1)
    out.print(kafka.bootstrap)


@app.command("down")
def down(
    ctx: typer.Context,
    purge: bool = typer.Option(False, help="Also delete the broker's data."),
) -> None:
    """Stop the broker or cluster `tuyen broker up` started (exactly those processes)."""
    console.print(stop_default(settings(ctx), purge=purge))


@app.command("secrets")
def secrets(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write (e.g. deploy/compose/secrets).")
    ],
    host: list[str] = typer.Option(  # noqa: B008
        ["kafka-1", "kafka-2", "kafka-3"],
        help="A broker host name its certificate must carry (repeat); loopback is always in.",
    ),
) -> None:
    """Write what a self-run secured cluster needs (docker-compose): a CA and the nodes'
    certificate (``tls/``), the admin's password (``kafka/admin.properties``) and a password
    per principal of deploy/principals.py (``kafka/<principal>``), files 0600, kept when
    they exist. Stations get theirs with ``--station`` of deploy/security/kafka-acls.sh."""
    from deploy.broker.secure import write_cluster_secrets

    written = write_cluster_secrets(out_dir, tuple(host))
    for path in written:
        out.print(str(path))
