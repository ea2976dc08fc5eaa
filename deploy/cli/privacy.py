"""`tuyen purge`, `tuyen dlq expire`, `tuyen national release`, `tuyen keys erasure-key`:
erasure, retention, the k-anonymous release and the key the writers apply the erasure register
with. Jobs of the operator who holds the store credentials and the pseudonym key (the stream
worker's), never of an analyst (docs/stores.md, "Erasure and retention")."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import typer
from rich.table import Table

from deploy.anchors import (
    check_erasure_key,
    derive_erasure_key,
    erasure_key,
    erasure_key_text,
    pseudonym_key,
)
from deploy.cli.common import console, fail, out, settings, store_access_log
from deploy.settings import Settings
from schemas.fields import HEALTH_ID_PATTERN
from schemas.hierarchy import VN_TZ
from sinks.roots import StoreRoots
from sinks.store import Store
from streams.pseudonym_key import decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser

__all__ = ["dlq_app", "erasure_hash", "keys_app", "national_app", "purge"]

dlq_app = typer.Typer(help="The dead-letter store (operators only).", no_args_is_help=True)
national_app = typer.Typer(help="The national tier's release.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Keys derived from the pseudonym key for the services that must not hold it.",
    no_args_is_help=True,
)


def _pseudonymiser(s: Settings, job: str) -> Pseudonymiser:
    key = pseudonym_key(s, job)
    return Pseudonymiser(decode_pseudonym_key(key.get_secret_value(), allow_development=s.dev))


def erasure_hash(s: Settings, job: str) -> Callable[[str], str]:
    """The erasure register's keyed hash (sinks.erasure.erasure_hasher) with
    ``TUYEN_ERASURE_KEY`` (deploy.anchors.erasure_key: :class:`ConfigError` naming it when
    unset outside development mode; the pseudonym key is not read)."""
    from sinks.erasure import erasure_hasher

    return erasure_hasher(erasure_key(s, job))


@keys_app.command("erasure-key")
def erasure_key_command(
    ctx: typer.Context,
    out_file: Path = typer.Option(  # noqa: B008
        None, "--out", help="Write it to this file (mode 0600) instead of stdout."
    ),
) -> None:
    """Print the erasure key (TUYEN_ERASURE_KEY) derived from TUYEN_PSEUDONYM_KEY: what the
    sinks and `tuyen compact` apply a purge's erasure register with, instead of the pseudonym
    key. The same pseudonym key always gives the same erasure key."""
    s = settings(ctx)
    key = pseudonym_key(s, "tuyen keys erasure-key").get_secret_value()
    text = erasure_key_text(key, development=s.dev)
    if out_file is None:
        typer.echo(text)
        return
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file too
        f.write(text.encode() + b"\n")
    console.print(f"erasure key written: {out_file} (mode 0600)")


def _province_roots(roots: StoreRoots) -> list[str]:
    """Every province's root this machine can reach (local roots that exist; all others)."""
    return [
        r
        for r in roots.province_roots()
        if ("://" in r and not r.startswith("file://")) or Path(r.removeprefix("file://")).exists()
    ]


def purge(
    ctx: typer.Context,
    health_id: str = typer.Option(..., "--health-id", help="The person's 10-digit health id."),
    reason: str = typer.Option(..., help="Why (the request's reference): in the access log."),
    root: str = typer.Option(None, help="One root holding everything (default: each owner's)."),
    also_root: list[str] = typer.Option(  # noqa: B008
        [],
        "--also-root",
        help="A province root outside TUYEN_PROVINCE_ROOT's map (repeatable): registered and "
        "purged like the configured ones.",
    ),
) -> None:
    """Erase a person's history from the stores (record-level tiers of every province's
    root, the quarantine's DLQ, the national tier and its release); logged with a keyed hash
    of the id. Idempotent: run it again to finish."""
    s = settings(ctx)
    if not re.fullmatch(HEALTH_ID_PATTERN.strip("^$"), health_id, re.ASCII):
        fail(f"--health-id must be 10 digits, got {health_id!r}")
    if not reason.strip():
        fail("--reason must say why (the erasure request's reference)")
    from sinks.purge import Purge

    roots = StoreRoots.single(root) if root else s.store_roots()
    p = _pseudonymiser(s, "tuyen purge")
    derived = derive_erasure_key(p)
    check_erasure_key(s, derived)  # the writers given another key could not apply it
    from sinks.erasure import erasure_hasher

    hashed = erasure_hasher(derived)
    table = Table("root", "area", "rows removed", "files rewritten")
    configured = roots.province_roots()
    extra = [r for r in dict.fromkeys(also_root) if r not in configured]
    existing = (_province_roots(roots) or [roots.province_root("01")]) + extra
    # every configured root gets the entry, one that holds nothing yet too: its sink, started
    # later, finds it before it replays the person's events; all in the first root's step 0,
    # which reaches every root before it writes anything (sinks.purge step 0)
    ahead = [r for r in (*configured, *extra) if r != existing[0]]
    for province_root in existing:
        job = Purge(
            province_root,
            pseudonym=p.pseudonym,
            subject_hash=lambda hid: p.pseudonym(hid, "purge"),
            access_log=store_access_log(ctx, province_root),
            k=s.k_anonymity,
            dlq_root=roots.quarantine,
            national_root=roots.national,
            erasure_hash=hashed,
            register_also=ahead,
        )
        ahead = []  # registered by the first root's step 0
        report = job.run(health_id, reason=reason.strip())
        for area in sorted(set(report.rows) | set(report.files)):
            rows, files = report.rows.get(area, 0), report.files.get(area, 0)
            table.add_row(province_root, area, str(rows), str(files))
    out.print(table)
    out.print(f"subject {report.subject}; child ids cleared: {report.cleared}")


@dlq_app.command("expire")
def expire(
    ctx: typer.Context,
    root: str = typer.Option(None, help="Root holding dlq/ (default: the quarantine root)."),
    retention_days: int = typer.Option(
        None, min=1, help="Keep this many days (default: TUYEN_DLQ_RETENTION_DAYS, 30)."
    ),
) -> None:
    """Remove dead letters older than the retention (whole days)."""
    from sinks.purge import expire_dlq

    s = settings(ctx)
    days = retention_days or s.dlq_retention_days
    removed = expire_dlq(Store.open(root or s.store_roots().quarantine, create=False), days)
    out.print(f"dead-letter files removed: {removed} (retention {days} days)")


@national_app.command("release")
def release(
    ctx: typer.Context,
    root: str = typer.Option(None, help="One root holding both tiers (default: each owner's)."),
    k: int = typer.Option(None, min=2, help="k (default: TUYEN_K_ANONYMITY, 5)."),
    on: str = typer.Option(None, help="Reference date YYYY-MM-DD (default: today, Vietnam)."),
) -> None:
    """Write the k-anonymous release of the persons' age bands to the national store, from
    the province tier's current person records (needs the pseudonym key)."""
    from sinks.catalog import open_catalog
    from sinks.national import release_person_qi

    s = settings(ctx)
    roots = StoreRoots.single(root) if root else s.store_roots()
    sources = _province_roots(roots) or [roots.province_root("01")]
    try:
        day = date.fromisoformat(on) if on else datetime.now(VN_TZ).date()
    except ValueError:
        fail(f"--on must be YYYY-MM-DD, got {on!r}")
    p = _pseudonymiser(s, "tuyen national release")
    con = open_catalog(sources[0] if len(sources) == 1 else sources, "province")
    try:
        report = release_person_qi(con, roots.national, p.pseudonym, k=k or s.k_anonymity, on=day)
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
