"""``tuyen report resources|health|completeness``: the reports from the command line.

Exit codes: 0 done, 2 bad request (period, unit, tier …), 3 access refused.
"""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import duckdb
import orjson
import typer
from rich.console import Console

from deploy.anchors import access_log_key
from deploy.cli.common import console as err
from deploy.cli.common import fail, settings
from sinks.catalog import CATALOG_TIERS
from sinks.reports.access import AccessLog
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import AccessDenied, ReportError
from sinks.reports.indicators import KINDS
from sinks.reports.scope import MODES

__all__ = ["ReportFormat", "report"]

#: Choices derived from the reports package's own declarations (declared once, there).
ReportKind = StrEnum("ReportKind", {k: k for k in KINDS})  # type: ignore[misc]
ReportTier = StrEnum("ReportTier", {t: t for t in CATALOG_TIERS})  # type: ignore[misc]
HierarchyMode = StrEnum("HierarchyMode", {m: m for m in MODES})  # type: ignore[misc]
_NATIONAL = ReportTier("national")
_AS_RECORDED = HierarchyMode("as-recorded")


class ReportFormat(StrEnum):
    """What `tuyen report` writes."""

    TABLE = "table"
    CSV = "csv"
    PARQUET = "parquet"
    HTML = "html"
    FHIR = "fhir"


def _access_log_path(store_root: str, configured: str | None, home: Path) -> Path:
    if configured:
        return Path(configured)
    if "://" in store_root and not store_root.startswith("file://"):
        return home / "access.log"  # object-store roots: keep the log local
    return Path(store_root.removeprefix("file://")) / "_access.log"


def _holidays(path: Path | None) -> frozenset[date]:
    if path is None:
        return frozenset()
    days = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            days.add(date.fromisoformat(text))
    return frozenset(days)


def report(
    ctx: typer.Context,
    kind: Annotated[ReportKind, typer.Argument(help="Which report.")],
    period: Annotated[str, typer.Option(help="2026-10 | 2026-Q3 | 2026-H1 | 2026-9M | 2026")],
    principal: Annotated[
        str, typer.Option("--as", help="who asks: national | province:CODE | district:CODE")
    ],
    tier: Annotated[ReportTier, typer.Option(help="The tier the unit belongs to.")] = _NATIONAL,
    unit: Annotated[str | None, typer.Option(help="unit code (default VN if national)")] = None,
    hierarchy: Annotated[
        HierarchyMode,
        typer.Option("--hierarchy", help="as-recorded, or current (restate into 2025 units)"),
    ] = _AS_RECORDED,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.")
    ] = ReportFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="output file (needed for parquet)")] = None,
    store_root: Annotated[
        str | None, typer.Option(help="store root (default TUYEN_STORE_ROOT)")
    ] = None,
    hierarchy_dir: Annotated[
        Path | None,
        typer.Option(help="folder of units/links/population CSV files (default: reference)"),
    ] = None,
    holidays: Annotated[
        Path | None,
        typer.Option(help="public holidays file, one YYYY-MM-DD a line (deadlines skip them)"),
    ] = None,
) -> None:
    """Resource, health-indicator or completeness report for a unit and its children."""
    from schemas.hierarchy import Hierarchy
    from sinks.reports.engine import run_report

    if fmt is ReportFormat.PARQUET and out is None:
        fail("--format parquet needs --out PATH")
    s = settings(ctx)
    root = store_root or s.store_root
    log = AccessLog(_access_log_path(root, s.access_log, s.home), key=access_log_key(s))
    if hierarchy_dir is None:
        h = Hierarchy.default()
    else:

        def pick(stem: str) -> Path:
            gz = hierarchy_dir / f"{stem}.csv.gz"
            return gz if gz.exists() else hierarchy_dir / f"{stem}.csv"

        h = Hierarchy.from_csv(pick("units"), pick("links"), pick("population"))
    config = ReportConfig(
        holidays=_holidays(holidays), suppression_threshold=s.suppression_threshold
    )
    con = _open(root, tier.value, hierarchy_dir)
    try:
        result = run_report(
            con, h, kind.value, tier.value, unit, period, hierarchy.value, principal,
            access_log=log, config=config, trend=fmt is ReportFormat.HTML,
        )  # fmt: skip
    except AccessDenied as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(3) from None
    except ReportError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    finally:
        con.close()
    _emit(result, fmt, out)


def _open(root: str, tier: str, hierarchy_dir: Path | None) -> duckdb.DuckDBPyConnection:
    from sinks.catalog import open_catalog
    from sinks.reports.config import source_tier

    return open_catalog(root, source_tier(tier), hierarchy=hierarchy_dir)


def _emit(result: object, fmt: ReportFormat, out: Path | None) -> None:
    from sinks.reports.model import Report
    from sinks.reports.render import (
        fhir_bundle,
        render_html,
        render_tables,
        write_csv,
        write_parquet,
    )

    assert isinstance(result, Report)
    if fmt is ReportFormat.TABLE:
        render_tables(result, Console(file=out.open("w", encoding="utf-8")) if out else Console())
        return
    if fmt is ReportFormat.PARQUET:
        assert out is not None
        write_parquet(result, out)
        err.print(f"wrote {out}")
        return
    if fmt is ReportFormat.CSV:
        if out is not None:
            write_csv(result, out)
        else:
            write_csv(result, sys.stdout.buffer)
        return
    text = (
        render_html(result).encode()
        if fmt is ReportFormat.HTML
        else orjson.dumps(fhir_bundle(result), option=orjson.OPT_INDENT_2)
    )
    if out is not None:
        out.write_bytes(text)
        err.print(f"wrote {out}")
    else:
        sys.stdout.buffer.write(text + b"\n")
