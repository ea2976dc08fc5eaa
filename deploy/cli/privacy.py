"""`tuyen purge`, `tuyen dlq expire`, `tuyen national release`: erasure, retention and the
k-anonymous release. Jobs of the operator who holds the store credentials and the pseudonym
key (the stream worker's), never of an analyst (docs/stores.md, "Erasure and retention")."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date, datetime

import typer
from rich.table import Table

from deploy.anchors import access_log_key, pseudonym_key
from deploy.cli.common import fail, out, settings
from deploy.cli.report import _access_log_path
from deploy.settings import Settings
from schemas.fields import HEALTH_ID_PATTERN
from schemas.hierarchy import VN_TZ
from sinks.reports.accesslog import AccessLog
from sinks.store import Store
from streams.pseudonym_key import decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser

__all__ = ["dlq_app", "national_app", "purge"]

dlq_app = typer.Typer(help="The dead-letter store (operators only).", no_args_is_help=True)
national_app = typer.Typer(help="The national tier's release.", no_args_is_help=True)


def _pseudonymiser(s: Settings, job: str) -> Pseudonymiser:
    key = pseudonym_key(s, job)
    return Pseudonymiser(decode_pseudonym_key(key.get_secret_value(), allow_development=s.dev))


def _access_log(s: Settings, root: str) -> AccessLog:
    """The access log ``tuyen report`` appends to for this store (the same file and key)."""
    return AccessLog(_access_log_path(root, s.access_log, s.home), key=access_log_key(s))


def purge(
    ctx: typer.Context,
    health_id: str = typer.Option(..., "--health-id", help="The person's 10-digit health id."),
    reason: str = typer.Option(..., help="Why (the request's reference): in the access log."),
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
) -> None:
    """Erase a person's history from the stores (record-level tiers, DLQ, national tier and
    its release); logged with a keyed hash of the id. Idempotent: run it again to finish."""
    s = settings(ctx)
    if not re.fullmatch(HEALTH_ID_PATTERN.strip("^$"), health_id, re.ASCII):
        fail(f"--health-id must be 10 digits, got {health_id!r}")
    if not reason.strip():
        fail("--reason must say why (the erasure request's reference)")
    from sinks.purge import Purge

    store_root = root or s.store_root
    p = _pseudonymiser(s, "tuyen purge")
    job = Purge(
        store_root,
        pseudonym=p.pseudonym,
        subject_hash=lambda hid: p.pseudonym(hid, "purge"),
        access_log=_access_log(s, store_root),
        k=s.k_anonymity,
    )
    report = job.run(health_id, reason=reason.strip())
    table = Table("area", "rows removed", "files rewritten")
    for area in sorted(set(report.rows) | set(report.files)):
        table.add_row(area, str(report.rows.get(area, 0)), str(report.files.get(area, 0)))
    out.print(table)
    out.print(f"subject {report.subject}; child ids cleared: {report.cleared}")


@dlq_app.command("expire")
def expire(
    ctx: typer.Context,
    root: str = typer.Option(None, help="Store root holding dlq/ (default: TUYEN_STORE_ROOT)."),
    retention_days: int = typer.Option(
        None, min=1, help="Keep this many days (default: TUYEN_DLQ_RETENTION_DAYS, 30)."
    ),
) -> None:
    """Remove dead letters older than the retention (whole days)."""
    from sinks.purge import expire_dlq

    s = settings(ctx)
    days = retention_days or s.dlq_retention_days
    removed = expire_dlq(Store.open(root or s.store_root, create=False), days)
    out.print(f"dead-letter files removed: {removed} (retention {days} days)")


@national_app.command("release")
def release(
    ctx: typer.Context,
    root: str = typer.Option(None, help="Store root (default: TUYEN_STORE_ROOT)."),
    k: int = typer.Option(None, min=2, help="k (default: TUYEN_K_ANONYMITY, 5)."),
    on: str = typer.Option(None, help="Reference date YYYY-MM-DD (default: today, Vietnam)."),
) -> None:
    """Write the k-anonymous release of the persons' age bands to the national store, from
    the province tier's current person records (needs the pseudonym key)."""
    from sinks.catalog import open_catalog
    from sinks.national import release_person_qi

    s = settings(ctx)
    store_root = root or s.store_root
    try:
        day = date.fromisoformat(on) if on else datetime.now(VN_TZ).date()
    except ValueError:
        fail(f"--on must be YYYY-MM-DD, got {on!r}")
    p = _pseudonymiser(s, "tuyen national release")
    con = open_catalog(store_root, "province")
    try:
        report = release_person_qi(con, store_root, p.pseudonym, k=k or s.k_anonymity, on=day)
    finally:
        con.close()
    table = Table("persons", "k", "by level", "suppressed", "smallest class")
    table.add_row(
        str(report.persons),
        str(report.k),
        str(asdict(report)["by_level"]),
        str(report.suppressed),
        str(report.smallest_class),
    )
    out.print(table)
