"""``tuyen report resources|health|completeness``: the reports from the command line.

Exit codes: 0 done, 2 bad request (period, unit, tier …), 3 access refused.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import duckdb
import orjson
import typer
from rich.console import Console

from sinks.reports.access import AccessLog
from sinks.reports.config import ReportConfig
from sinks.reports.exceptions import AccessDenied, ReportError

__all__ = ["register"]

_FORMATS = ("table", "csv", "parquet", "html", "fhir")
err = Console(stderr=True)


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
    kind: Annotated[str, typer.Argument(help="resources | health | completeness")],
    period: Annotated[str, typer.Option(help="2026-10 | 2026-Q3 | 2026-H1 | 2026-9M | 2026")],
    principal: Annotated[
        str, typer.Option("--as", help="who asks: national | province:CODE | district:CODE")
    ],
    tier: Annotated[str, typer.Option(help="national | province | district")] = "national",
    unit: Annotated[str | None, typer.Option(help="unit code (default VN if national)")] = None,
    hierarchy: Annotated[
        str,
        typer.Option("--hierarchy", help="as-recorded | current (restate into 2025 units)"),
    ] = "as-recorded",
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(_FORMATS))] = "table",
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
    from deploy.settings import Settings
    from schemas.hierarchy import Hierarchy
    from sinks.reports.engine import run_report
    from sinks.reports.request import ReportRequest

    if fmt not in _FORMATS:
        err.print(f"[red]unknown format {fmt!r}: use {', '.join(_FORMATS)}[/red]")
        raise typer.Exit(2)
    if fmt == "parquet" and out is None:
        err.print("[red]--format parquet needs --out PATH[/red]")
        raise typer.Exit(2)
    settings = Settings()
    root = store_root or settings.store_root
    log = AccessLog(_access_log_path(root, settings.access_log, settings.home))
    if hierarchy_dir is None:
        h = Hierarchy.default()
    else:

        def pick(stem: str) -> Path:
            gz = hierarchy_dir / f"{stem}.csv.gz"
            return gz if gz.exists() else hierarchy_dir / f"{stem}.csv"

        h = Hierarchy.from_csv(pick("units"), pick("links"), pick("population"))
    config = ReportConfig(holidays=_holidays(holidays))
    con = _open(root, tier, hierarchy_dir)
    try:
        request = ReportRequest(
            kind=kind, tier=tier, unit=unit, period=period, principal=principal,
            hierarchy_mode=hierarchy, trend=fmt == "html",
        )  # fmt: skip
        result = run_report(con, h, request, access_log=log, config=config)
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

    store_tier = tier if tier in {"national", "province", "district"} else "national"
    return open_catalog(root, store_tier, hierarchy=hierarchy_dir)


def _emit(result: object, fmt: str, out: Path | None) -> None:
    from sinks.reports.model import Report
    from sinks.reports.render import (
        fhir_bundle,
        render_html,
        render_tables,
        write_csv,
        write_parquet,
    )

    assert isinstance(result, Report)
    if fmt == "table":
        render_tables(result, Console(file=out.open("w", encoding="utf-8")) if out else Console())
        return
    if fmt == "parquet":
        assert out is not None
        write_parquet(result, out)
        err.print(f"wrote {out}")
        return
    if fmt == "csv":
        if out is not None:
            write_csv(result, out)
        else:
            write_csv(result, sys.stdout.buffer)
        return
    text = (
        render_html(result).encode()
        if fmt == "html"
        else orjson.dumps(fhir_bundle(result), option=orjson.OPT_INDENT_2)
    )
    if out is not None:
        out.write_bytes(text)
        err.print(f"wrote {out}")
    else:
        sys.stdout.buffer.write(text + b"\n")


def register(app: typer.Typer) -> None:
    """Add ``tuyen report`` to the root app."""
    app.command("report")(report)
