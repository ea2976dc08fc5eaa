"""``tuyen export dhis2``: indicators out to DHIS2 (dataValueSets JSON, ADX XML).

Exit codes: 0 done, 2 bad request, 3 access refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from deploy.cli.common import console as err
from deploy.cli.common import fail, settings, store_access_log
from deploy.cli.report import Basis, fail_report, log_root, open_store, report_root

if TYPE_CHECKING:
    from sinks.dhis2 import Export

__all__ = ["app", "dhis2"]

app = typer.Typer(help="Aggregates out to other systems.")
_LATEST = Basis("latest")


@app.command("dhis2")
def dhis2(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="2026-10 | 2026-Q3 | 2026-H1 | 2026 (not 9M).")],
    unit: Annotated[str, typer.Option(help="Unit code: VN, a province, a district…")],
    mapping: Annotated[Path, typer.Option(exists=True, help="DHIS2 mapping file (JSON).")],
    principal: Annotated[str, typer.Option("--as", help="national | province:CODE | …")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="dataValueSets JSON file.")
    ] = None,
    adx_out: Annotated[Path | None, typer.Option("--adx", help="ADX XML file.")] = None,
    complete_date: Annotated[str | None, typer.Option(help="completeDate (YYYY-MM-DD).")] = None,
    basis: Annotated[
        Basis, typer.Option(help="latest, or submitted: each station-month as approved")
    ] = _LATEST,
    store_root: Annotated[
        str | None,
        typer.Option(help="one root holding the unit (default: its owner's, TUYEN_*_ROOT)"),
    ] = None,
) -> None:
    """The indicators' numerators and denominators of a unit and its children for a period,
    as a DHIS2 dataValueSets JSON document and/or ADX XML, through a mapping file."""
    from schemas.hierarchy import HierarchyError
    from sinks.reports import ReportError

    if json_out is None and adx_out is None:
        fail("give --json FILE and/or --adx FILE")
    try:
        export = _export(ctx, period, unit, mapping, principal, json_out, adx_out, complete_date,
                         basis.value, store_root)  # fmt: skip
    except ReportError as exc:
        fail_report(exc)
    except HierarchyError as exc:
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


def _export(
    ctx: typer.Context,
    period: str,
    unit: str,
    mapping: Path,
    principal: str,
    json_out: Path | None,
    adx_out: Path | None,
    complete_date: str | None,
    basis: str,
    store_root: str | None,
) -> Export:
    """Run the reports (one request per kind) and write the requested documents."""
    from datetime import UTC, datetime

    from schemas.hierarchy import Hierarchy
    from sinks.dhis2 import (
        Dhis2Mapping,
        adx_document,
        build_export,
        data_value_set,
        report_figures,
    )
    from sinks.reports import ReportConfig

    s = settings(ctx)
    h = Hierarchy.default()
    tier = h.tier_of(unit).label
    roots = [store_root] if store_root else report_root(s, h, tier, unit)[0]
    maps = Dhis2Mapping.load(mapping)
    con = open_store(roots[0] if len(roots) == 1 else roots, tier, None)
    try:
        figures = report_figures(
            con, h, unit, period, principal, basis=basis,
            access_log=store_access_log(ctx, log_root(s, roots)),
            config=ReportConfig(suppression_threshold=s.suppression_threshold),
        )  # fmt: skip
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
