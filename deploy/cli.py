"""The `tuyen` command: one entry point fronting every job of the pipeline."""

from __future__ import annotations

import importlib
import logging
import sys
import time

import orjson
import typer
from rich.console import Console
from rich.table import Table

from deploy.broker import LocalBroker, broker_answers, provision
from deploy.broker.cluster import LocalCluster
from deploy.settings import Settings
from deploy.topics import apply_topics
from schemas.exceptions import TuyenError
from schemas.topics import topic_specs

app = typer.Typer(
    name="tuyen",
    help="Health-record change pipeline: stations → Kafka → tiers → Parquet → reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="A real Apache Kafka broker for development (KRaft).")
topics_app = typer.Typer(help="The pipeline's topics, declared in schemas/topics.py.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")

console = Console(stderr=True)
out = Console()


def settings() -> Settings:
    """Read the environment (the only place besides test fixtures that does)."""
    return Settings()


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _local(s: Settings) -> LocalBroker:
    return LocalBroker(s.home / "brokers" / "default", s.home)


def _cluster(s: Settings) -> LocalCluster:
    return LocalCluster(s.home / "brokers" / "cluster", s.home)


def local_metrics_urls(s: Settings) -> list[str]:
    """``<node id>=<url>`` of the JMX exporter of each node `tuyen broker up` started."""
    if s.kafka_bootstrap:
        return []
    state = _cluster(s).state()
    return [f"{n.node_id}={n.metrics_url}" for n in state.nodes] if state else []


def _container_state(s: Settings) -> dict[str, str] | None:
    path = s.home / "brokers" / "default" / "container.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


def current_bootstrap(s: Settings) -> str | None:
    """Where the broker that `tuyen broker up` provided (or KAFKA_BOOTSTRAP) listens."""
    if s.kafka_bootstrap:
        return s.kafka_bootstrap
    cont = _container_state(s)
    if cont is not None:
        return cont["bootstrap"]
    state = _local(s).state()
    if state is not None:
        return state.bootstrap
    cluster = _cluster(s).state()
    return cluster.bootstrap if cluster else None


def require_bootstrap(s: Settings) -> str:
    bootstrap = current_bootstrap(s)
    if bootstrap is None:
        console.print("[red]no broker: set KAFKA_BOOTSTRAP or run `tuyen broker up` first[/red]")
        raise typer.Exit(2)
    return bootstrap


@app.callback()
def _root(
    log_level: str = typer.Option(None, help="Logging level (default: TUYEN_LOG_LEVEL, WARNING)."),
) -> None:
    setup_logging(log_level or settings().log_level)


@broker_app.command("up")
def broker_up(
    brokers: int = typer.Option(
        1, min=1, max=9, help="Brokers: 1 (a single node) or 3 (a KRaft cluster, RF 3)."
    ),
) -> None:
    """Start a broker or a local cluster (or use KAFKA_BOOTSTRAP); print the bootstrap."""
    s = settings()
    existing = current_bootstrap(s)
    if existing and broker_answers(existing):
        running = len(existing.split(","))
        if not s.kafka_bootstrap and running != brokers:
            console.print(
                f"[red]a local {running}-broker setup already runs at {existing}; "
                "`tuyen broker down` it first[/red]"
            )
            raise typer.Exit(1)
        out.print(existing)
        return
    started = time.monotonic()
    if brokers > 1 and not s.kafka_bootstrap:
        state = _cluster(s).start()
        console.print(
            f"cluster ready brokers={state.brokers} bootstrap={state.bootstrap} "
            f"metrics={','.join(n.metrics_url for n in state.nodes)} "
            f"seconds={time.monotonic() - started:.1f}"
        )
        out.print(state.bootstrap)
        return
    if s.broker_mode in {"auto", "container"} and not s.kafka_bootstrap:
        from deploy.broker.container import docker_answers, start_container

        if s.broker_mode == "container" or docker_answers():
            import os

            os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # outlive this CLI
            container, bootstrap = start_container()
            path = s.home / "brokers" / "default" / "container.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            cid = container.get_wrapped_container().id
            path.write_bytes(orjson.dumps({"id": cid, "bootstrap": bootstrap}))
            out.print(bootstrap)
            return
    handle = provision(mode=s.broker_mode, kafka_bootstrap=s.kafka_bootstrap, home=s.home)
    console.print(
        f"broker ready mode={handle.mode} bootstrap={handle.bootstrap} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    out.print(handle.bootstrap)


@broker_app.command("status")
def broker_status() -> None:
    """Print the bootstrap address of the running broker; exit 1 when there is none."""
    s = settings()
    bootstrap = current_bootstrap(s)
    if bootstrap is None or not broker_answers(bootstrap):
        console.print("no broker running")
        raise typer.Exit(1)
    out.print(bootstrap)


@broker_app.command("down")
def broker_down(
    purge: bool = typer.Option(False, help="Also delete the broker's data."),
) -> None:
    """Stop the broker `tuyen broker up` started (exactly that process)."""
    s = settings()
    if s.kafka_bootstrap:
        console.print("KAFKA_BOOTSTRAP is set: that cluster is not ours to stop")
        return
    cont = _container_state(s)
    if cont is not None:
        import docker

        docker.from_env().containers.get(cont["id"]).stop()
        (s.home / "brokers" / "default" / "container.json").unlink()
        console.print("container stopped")
        return
    broker, cluster = _local(s), _cluster(s)
    stopped = broker.stop()
    stopped = cluster.stop() or stopped
    if purge:
        import shutil

        shutil.rmtree(broker.state_dir, ignore_errors=True)
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
    console.print("broker stopped" if stopped else "no broker was running")


@topics_app.command("apply")
def topics_apply() -> None:
    """Create missing topics and update partitions/configs of existing ones (idempotent)."""
    s = settings()
    bootstrap = require_bootstrap(s)
    changes = apply_topics(bootstrap, topic_specs(s.topic_prefix, s.topic_partitions))
    table = Table("topic", "action", "detail")
    for c in changes:
        table.add_row(c.name, c.action, c.detail)
    out.print(table)


@topics_app.command("list")
def topics_list() -> None:
    """Show the declared topics."""
    s = settings()
    table = Table("topic", "partitions", "cleanup", "retention ms", "description")
    for spec in topic_specs(s.topic_prefix, s.topic_partitions):
        table.add_row(
            spec.name,
            str(spec.partitions),
            spec.cleanup_policy,
            str(spec.retention_ms),
            spec.description,
        )
    out.print(table)


def _register_packages() -> None:
    from deploy import demo
    from producers import cli as producers_cli
    from sinks import cli as sinks_cli
    from streams import cli as streams_cli

    for module in (producers_cli, streams_cli, sinks_cli, demo):
        module.register(app)
    try:
        schemas_cli = importlib.import_module("schemas.cli")
    except ImportError:
        return
    schemas_cli.register(app)


_register_packages()


def main() -> None:
    """Console-script entry point: clear messages for tuyen's own errors, no tracebacks."""
    try:
        app()
    except TuyenError as exc:
        console.print(f"[red]error:[/red] {exc}")
        if exc.retryable:
            console.print("(this may succeed if tried again)")
        sys.exit(1)
