"""`tuyen import xml130|fhir PATH`: publish what facility software already exports.

Exit codes: 0 every visit published (or valid, with --dry-run); 1 some visits or files were
bad (the good ones are published); 2 usage error or no broker; 3 Kafka did not confirm every
event in time (they wait in the outboxes and are resent by the next run).

stdout: one tab-separated line per bad visit or file (``file, table, key, reason,
message``), then a JSON summary as the last line. stderr: warnings and progress.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import typer

from deploy.anchors import require_development
from deploy.cli.common import console, fail, raw_target, settings
from producers.config import ProducerConfig
from producers.interop.importer import (
    Importer,
    ImportReport,
    ReadContext,
    Reader,
    SigningPolicy,
    dev_signing,
    read_signing_key,
    single_key,
)
from schemas.envelope import KEY_ID_RE

__all__ = ["ImportFormat", "import_files"]

EXIT_BAD = 1
EXIT_DELIVERY = 3
_DEV_SIGNER_RE = re.compile(r"^hw-([0-9]{5})-[0-9]+$")

FacilitiesOpt = typer.Option(
    None, help="Facility registry CSV, MA_CSKCB → source (default: TUYEN_FACILITIES)."
)
SourceOpt = typer.Option(None, help="Publish every visit as this source (no registry needed).")
SignerOpt = typer.Option(None, help="Signer id of the facility's key (with --key-file).")
KeyFileOpt = typer.Option(None, help="The signer's Ed25519 private key (32 bytes, base64/hex).")
KeyIdOpt = typer.Option(None, help="The key's id in the registry (when the signer has several).")
FormatArg = typer.Argument(
    ..., help="xml130: Decision 130/4750 check-out files; fhir: FHIR R4 Bundles (JSON)."
)
DevKeysOpt = typer.Option(False, "--dev-keys", help="Sign with development keys (dev only).")
OutboxOpt = typer.Option(None, help="Outboxes, one per source (default: TUYEN_HOME/outboxes).")
TopicOpt = typer.Option(None, help="Target topic (default: station.changes).")
DryRunOpt = typer.Option(False, "--dry-run", help="Read and validate only; publish nothing.")
TimeoutOpt = typer.Option(60.0, help="Seconds to wait for Kafka to confirm.")


class ImportFormat(StrEnum):
    """What the files are."""

    XML130 = "xml130"
    FHIR = "fhir"


def _signing(
    ctx: typer.Context,
    signer: str | None,
    key_file: Path | None,
    key_id: str | None,
    dev_keys: bool,
    source: str | None,
) -> SigningPolicy:
    if dev_keys:
        if signer or key_file or key_id:
            raise typer.BadParameter("give --dev-keys or --signer/--key-file, not both")
        require_development(settings(ctx), "tuyen import --dev-keys", "signs with development keys")
        return dev_signing
    if not signer or key_file is None:
        fail(
            "no signing key: give --signer and --key-file (the facility's key), "
            "or --dev-keys in development"
        )
    m = _DEV_SIGNER_RE.match(signer)
    own = source or (m.group(1) if m else None)
    if own is None:
        raise typer.BadParameter("give --source: the source the signer's key belongs to")
    try:
        key = read_signing_key(key_file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if key_id is not None and not KEY_ID_RE.fullmatch(key_id):
        raise typer.BadParameter(f"--key-id {key_id!r} is not a key id of the contract")
    return single_key(own, signer, key, key_id)


def _files(path: Path, pattern: str) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob(pattern) if p.is_file())
    return [path]


def _run(
    ctx: typer.Context,
    paths: list[Path],
    reader: Reader,
    read_ctx: ReadContext,
    signing: SigningPolicy,
    *,
    outbox_dir: Path | None,
    topic: str | None,
    dry_run: bool,
    timeout: float,
) -> tuple[ImportReport, int]:
    """Read, publish and wait; returns the report and the events still unconfirmed."""
    config_for: Callable[[str], ProducerConfig]
    if dry_run:

        def config_for(src: str) -> ProducerConfig:
            raise AssertionError("a dry run opens no outbox")

    else:
        conn, target = raw_target(ctx, topic)
        root = outbox_dir or settings(ctx).home / "outboxes" / "import"

        def config_for(src: str) -> ProducerConfig:
            return ProducerConfig(kafka=conn, topic=target, outbox_path=root / f"{src}.db")

    importer = Importer(config_for, signing, dry_run=dry_run)
    report = ImportReport()
    try:
        report = importer.run(paths, reader, read_ctx)
    finally:  # what was staged is flushed and closed even when reading failed
        left = importer.close(timeout)
    return report, left


def _read_context(ctx: typer.Context, facilities: Path | None, source: str | None) -> ReadContext:
    from schemas.facilities import FacilityRegistry
    from schemas.hierarchy import InvalidReferenceData

    configured = settings(ctx).facilities
    registry_path = facilities or (Path(configured) if configured else None)
    if registry_path is None and source is None:
        fail("give --facilities (MA_CSKCB → source; or TUYEN_FACILITIES) or --source")
    try:
        registry = FacilityRegistry.load(registry_path) if registry_path else None
    except (OSError, InvalidReferenceData) as exc:
        fail(f"facility registry {registry_path}: {exc}")
    return ReadContext(registry=registry, source=source)


def _finish(report: ImportReport, left: int, dry_run: bool) -> None:
    import orjson

    for w in report.warnings:
        console.print(f"[yellow]warning[/yellow] {w.line()}", highlight=False)
    for p in report.problems:
        print(p.line())
    summary = {**report.summary(), "unconfirmed": left}
    print(orjson.dumps(summary).decode())
    verb = "valid (dry run, nothing sent)" if dry_run else "published"
    console.print(
        f"{report.visits} visits from {report.files} files: {report.published} events {verb}, "
        f"{report.unchanged} records unchanged, {len(report.problems)} bad"
    )
    if left:
        fail(
            f"{left} events not yet confirmed by Kafka: they wait in the outboxes "
            "and are resent by the next run",
            EXIT_DELIVERY,
        )
    if report.problems:
        raise typer.Exit(EXIT_BAD)


def import_files(
    ctx: typer.Context,
    fmt: ImportFormat = FormatArg,
    path: Path = typer.Argument(..., exists=True, help="A file, or a folder of them."),  # noqa: B008
    facilities: Path | None = FacilitiesOpt,
    source: str | None = SourceOpt,
    signer: str | None = SignerOpt,
    key_file: Path | None = KeyFileOpt,
    key_id: str | None = KeyIdOpt,
    dev_keys: bool = DevKeysOpt,
    outbox_dir: Path | None = OutboxOpt,
    topic: str | None = TopicOpt,
    dry_run: bool = DryRunOpt,
    timeout: float = TimeoutOpt,
) -> None:
    """Publish what facility software exports: Decision 130 XML (table 1 → person +
    encounter, table 2 → medicine_dispensed) or FHIR R4 Bundles (Patient, Encounter,
    Condition, Observation, Immunization); signed with the facility's key, through the SDK
    outbox. Bad visits are listed and not published; the good ones are."""
    reader: Reader
    if fmt is ImportFormat.XML130:
        from producers.interop.xml130 import read_file as reader
    else:
        from producers.interop.fhir import read_bundle as reader
    signing = _signing(ctx, signer, key_file, key_id, dev_keys, source)
    report, left = _run(
        ctx,
        _files(path, "*.xml" if fmt is ImportFormat.XML130 else "*.json"),
        reader,
        _read_context(ctx, facilities, source),
        signing,
        outbox_dir=outbox_dir,
        topic=topic,
        dry_run=dry_run,
        timeout=timeout,
    )
    _finish(report, left, dry_run)
