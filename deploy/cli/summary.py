"""``tuyen summary``: a patient's IPS-shaped FHIR summary from a province's store.

Exit codes: 0 done, 2 bad request, 3 access refused, 4 no such person.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from deploy.cli.common import console as err
from deploy.cli.common import settings, store_access_log

__all__ = ["summary"]

EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4


def _write(doc: bytes, out: Path | None) -> None:
    """``doc`` to ``out`` (said on stderr), or to stdout."""
    if out is None:
        sys.stdout.buffer.write(doc + b"\n")
    else:
        out.write_bytes(doc)
        err.print(f"wrote {out}")


def summary(
    ctx: typer.Context,
    health_id: Annotated[str, typer.Option(help="The person's health id (10 digits).")],
    clinician: Annotated[str, typer.Option(help="Who asks (clinician account id).")],
    facility: Annotated[str, typer.Option(help="The clinician's facility (source code).")],
    purpose: Annotated[str, typer.Option(help="Why (logged), e.g. 'continuity of care'.")],
    province: Annotated[str, typer.Option(help="The province whose store is read.")],
    store_root: Annotated[
        str | None,
        typer.Option(help="one root holding the province (default: its own, TUYEN_*_ROOT)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the Bundle here (default stdout).")
    ] = None,
) -> None:
    """A person's summary from every station of a province (FHIR R4 document, IPS-shaped).

    The clinician, the facility and the stated purpose go to the access log
    (TUYEN_ACCESS_LOG); the facility is placed with the facility registry
    (TUYEN_FACILITIES) and must be in the province."""
    from schemas.facilities import load_hierarchy
    from sinks.catalog import open_catalog
    from sinks.reports import AccessDenied, ReportError
    from sinks.summary import SummaryNotFound, SummaryRequest, patient_summary

    s = settings(ctx)
    root = store_root or s.store_roots().province_root(province)
    con = open_catalog(root, "province", province=province)
    try:
        bundle = patient_summary(
            con,
            province,
            SummaryRequest(health_id, clinician, facility, purpose),
            access_log=store_access_log(ctx, root),
            hierarchy=load_hierarchy(s.facilities),
        )
    except AccessDenied as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(EXIT_REFUSED) from None
    except SummaryNotFound as exc:
        err.print(f"[yellow]{exc.message}[/yellow]")
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except ReportError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    finally:
        con.close()
    _write(orjson.dumps(bundle, option=orjson.OPT_INDENT_2), out)
