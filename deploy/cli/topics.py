"""`tuyen topics apply | list`: the pipeline's topics, declared in ``schemas/topics.py``."""

from __future__ import annotations

import typer
from rich.table import Table

from deploy.cli.common import kafka, out, settings
from deploy.topics import apply_topics
from schemas.topics import topic_specs

__all__ = ["app"]

app = typer.Typer(help="The pipeline's topics, declared in schemas/topics.py.")


@app.command("apply")
def apply(ctx: typer.Context) -> None:
    """Create missing topics and update partitions/configs of existing ones (idempotent)."""
    s = settings(ctx)
    changes = apply_topics(
        kafka(ctx),
        topic_specs(
            s.topic_prefix,
            s.topic_partitions,
            record_topics=s.record_topics,
            dlq_retention_days=s.dlq_retention_days,
        ),
    )
    table = Table("topic", "action", "detail")
    for c in changes:
        table.add_row(c.name, c.action, c.detail)
    out.print(table)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Show the declared topics."""
    s = settings(ctx)
    table = Table("topic", "partitions", "cleanup", "retention ms", "description")
    for spec in topic_specs(
        s.topic_prefix,
        s.topic_partitions,
        record_topics=s.record_topics,
        dlq_retention_days=s.dlq_retention_days,
    ):
        table.add_row(
            spec.name,
            str(spec.partitions),
            spec.cleanup_policy,
            str(spec.retention_ms),
            spec.description,
        )
    out.print(table)
