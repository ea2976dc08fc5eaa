"""``tuyen summary`` (a patient's IPS-shaped FHIR summary) and ``tuyen export dhis2``.

Exit codes: 0 done, 2 bad request, 3 access refused, 4 no such person (summary).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

__all__ = ["register"]

err = Console(stderr=True)
export_app = typer.Typer(help="Aggregates out to other systems.")


def _store_and_log(store_root: str | None) -> tuple[str, Path]:
    from deploy.settings import Settings
    from sinks.reports.cli import _access_log_path

    s = Settings()
    root = store_root or s.store_root
    return root, _access_log_path(root, s.access_log, s.home)


def _write(doc: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(doc + b"\n")
    else:
        out.write_bytes(doc)
        err.print(f"wrote {out}")


def summary(
    health_id: Annotated[str, typer.Option(help="The person's health id (10 digits).")],
    clinician: Annotated[str, typer.Option(help="Who asks (clinician account id).")],
    facility: Annotated[str, typer.Option(help="The clinician's facility (source code).")],
    purpose: Annotated[str, typer.Option(help="Why (logged), e.g. 'continuity of care'.")],
    province: Annotated[str, typer.Option(help="The province whose store is read.")],
    store_root: Annotated[str | None, typer.Option(help="Default TUYEN_STORE_ROOT.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the Bundle here (default stdout).")
    ] = None,
) -> None:
    """A person's summary from every station of a province (FHIR R4 document, IPS-shaped).

    The clinician, the facility and the stated purpose go to the access log."""
    from deploy.settings import Settings
    from schemas.facilities import load_hierarchy
    from sinks.catalog import open_catalog
    from sinks.reports import AccessDenied, AccessLog, ReportError
    from sinks.summary import SummaryNotFound, SummaryRequest, patient_summary

    root, log = _store_and_log(store_root)
    con = open_catalog(root, "province", province=province)
    try:
        bundle = patient_summary(
            con,
            province,
            SummaryRequest(health_id, clinician, facility, purpose),
            access_log=AccessLog(log),
            hierarchy=load_hierarchy(Settings().facilities),
        )
    except AccessDenied as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(3) from None
    except SummaryNotFound as exc:
        err.print(f"[yellow]{exc.message}[/yellow]")
        raise typer.Exit(4) from None
    except ReportError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    finally:
        con.close()
    _write(orjson.dumps(bundle, option=orjson.OPT_INDENT_2), out)


def register(app: typer.Typer) -> None:
    """Add ``tuyen summary`` and ``tuyen export`` to the root app."""
    app.command("summary")(summary)
    app.add_typer(export_app, name="export")
