"""``tuyen summary`` (a patient's IPS-shaped FHIR summary) and ``tuyen export dhis2``.

Exit codes: 0 done, 2 bad request, 3 access refused, 4 no such person (summary).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from sinks.dhis2 import Export

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


@export_app.command("dhis2")
def dhis2(
    period: Annotated[str, typer.Option(help="2026-10 | 2026-Q3 | 2026-H1 | 2026 (not 9M).")],
    unit: Annotated[str, typer.Option(help="Unit code: VN, a province, a district…")],
    mapping: Annotated[Path, typer.Option(exists=True, help="DHIS2 mapping file (JSON).")],
    principal: Annotated[str, typer.Option("--as", help="national | province:CODE | …")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="dataValueSets JSON file.")
    ] = None,
    adx_out: Annotated[Path | None, typer.Option("--adx", help="ADX XML file.")] = None,
    complete_date: Annotated[str | None, typer.Option(help="completeDate (YYYY-MM-DD).")] = None,
    store_root: Annotated[str | None, typer.Option(help="Default TUYEN_STORE_ROOT.")] = None,
) -> None:
    """The indicators' numerators and denominators of a unit and its children for a period,
    as a DHIS2 dataValueSets JSON document and/or ADX XML, through a mapping file."""
    from schemas.hierarchy import HierarchyError
    from sinks.reports import AccessDenied, ReportError

    if json_out is None and adx_out is None:
        err.print("[red]give --json FILE and/or --adx FILE[/red]")
        raise typer.Exit(2)
    try:
        export = _dhis2_export(period, unit, mapping, principal, json_out, adx_out, complete_date,
                               store_root)  # fmt: skip
    except AccessDenied as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(3) from None
    except (ReportError, HierarchyError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if export.skipped_units:
        err.print(
            f"[yellow]units without an org unit in the mapping (left out): "
            f"{', '.join(sorted(export.skipped_units))}[/yellow]"
        )
    err.print(
        f"{len(export.values)} values; indicators not mapped: {len(export.skipped_indicators)}"
    )


def _dhis2_export(
    period: str,
    unit: str,
    mapping: Path,
    principal: str,
    json_out: Path | None,
    adx_out: Path | None,
    complete_date: str | None,
    store_root: str | None,
) -> Export:
    """Run the reports through the adapter and write the requested documents."""
    from datetime import UTC, datetime

    from schemas.hierarchy import Hierarchy
    from sinks.catalog import open_catalog
    from sinks.dhis2 import (
        Dhis2Mapping,
        adx_document,
        build_export,
        data_value_set,
        report_figures,
    )
    from sinks.reports import AccessLog

    root, log = _store_and_log(store_root)
    h = Hierarchy.default()
    tier = h.tier_of(unit).label
    maps = Dhis2Mapping.load(mapping)
    con = open_catalog(root, tier if tier in ("national", "province", "district") else "district")
    try:
        figures = report_figures(con, h, unit, period, principal, access_log=AccessLog(log))
    finally:
        con.close()
    export = build_export(figures, maps, period)
    if json_out is not None:
        doc = data_value_set(export, maps, complete_date=complete_date)
        json_out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        err.print(f"wrote {json_out} ({len(doc['dataValues'])} data values)")
    if adx_out is not None:
        adx_out.write_bytes(
            adx_document(export, maps, exported=datetime.now(UTC), complete_date=complete_date)
        )
        err.print(f"wrote {adx_out}")
    return export


def register(app: typer.Typer) -> None:
    """Add ``tuyen summary`` and ``tuyen export`` to the root app."""
    app.command("summary")(summary)
    app.add_typer(export_app, name="export")
