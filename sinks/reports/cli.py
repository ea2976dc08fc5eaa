"""``tuyen report resources|health|completeness`` and the sign-off commands
(``tuyen report status|submit|approve|send-back|lock``, see :mod:`sinks.signoff.cli`).

Exit codes: 0 done, 2 bad request (period, unit, tier …), 3 access refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import duckdb
import orjson
import typer
from rich.console import Console

from sinks.reports.access import AccessLog
from sinks.reports.calendar import DEFAULT_REGIME, REGIMES
from sinks.reports.config import ReportConfig, regime
from sinks.reports.exceptions import ReportError
from sinks.reports.indicators import KINDS

__all__ = [
    "access_log_path",
    "fail",
    "load_hierarchy",
    "open_store",
    "register",
    "report_config",
]

_FORMATS = ("table", "csv", "parquet", "html", "fhir")
err = Console(stderr=True)
report_app = typer.Typer(
    help="Reports (resources, health, completeness) and the monthly sign-off.",
    no_args_is_help=True,
)


def access_log_path(store_root: str, configured: str | None, home: Path) -> Path:
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


def fail(exc: ReportError) -> NoReturn:
    """Print the error and exit with its code (2 bad request, 3 refused, 4 not allowed in
    the month's state, 5 not confirmed by the broker)."""
    err.print(f"[red]{exc.label}[/red] {exc.message}" if exc.label else f"[red]{exc.message}[/red]")
    raise typer.Exit(exc.exit_code) from None


def report_config(regime_name: str, holidays: Path | None) -> ReportConfig:
    return ReportConfig(regime=regime(regime_name), holidays=_holidays(holidays))


def load_hierarchy(hierarchy_dir: Path | None, population: Path | None) -> object:
    """The hierarchy (default, or a province's folder), with a province's own population
    table in place of the default rows for the stations it lists."""
    from schemas.hierarchy import Hierarchy, reference_dir
    from schemas.hierarchy.io import read_population

    if hierarchy_dir is None:
        h = Hierarchy.default()
    else:

        def pick(stem: str) -> Path:
            gz = hierarchy_dir / f"{stem}.csv.gz"
            return gz if gz.exists() else hierarchy_dir / f"{stem}.csv"

        totals = pick("population_totals")
        h = Hierarchy.from_csv(
            pick("units"),
            pick("links"),
            pick("population"),
            totals if totals.exists() else reference_dir() / "population_totals.csv",
        )
    if population is not None:
        h = h.with_population(read_population(population))
    return h


def open_store(root: str, tier: str, hierarchy_dir: Path | None) -> duckdb.DuckDBPyConnection:
    from sinks.catalog import open_catalog

    store_tier = tier if tier in {"national", "province", "district"} else "national"
    return open_catalog(root, store_tier, hierarchy=hierarchy_dir)


_open = open_store  # the tests replace it with a shared connection


def _report_command(kind: str) -> Callable[..., None]:
    def command(
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
        basis: Annotated[
            str,
            typer.Option(help="latest | submitted (each station-month as approved)"),
        ] = "latest",
        annualise: Annotated[
            bool, typer.Option(help="scale per-year rates of a shorter period to a year")
        ] = False,
        fmt: Annotated[str, typer.Option("--format", help=" | ".join(_FORMATS))] = "table",
        out: Annotated[Path | None, typer.Option(help="output file (needed for parquet)")] = None,
        store_root: Annotated[
            str | None, typer.Option(help="store root (default TUYEN_STORE_ROOT)")
        ] = None,
        hierarchy_dir: Annotated[
            Path | None,
            typer.Option(help="folder of units/links/population CSV files (default: reference)"),
        ] = None,
        population: Annotated[
            Path | None,
            typer.Option(help="a province's own population table (population CSV format)"),
        ] = None,
        regime_name: Annotated[
            str, typer.Option("--regime", help=f"deadlines: {', '.join(REGIMES)}")
        ] = DEFAULT_REGIME,
        holidays: Annotated[
            Path | None,
            typer.Option(help="extra days off, one YYYY-MM-DD a line (Vietnam's are built in)"),
        ] = None,
    ) -> None:
        _report(
            kind, period, principal, tier, unit, hierarchy, basis, annualise, fmt, out,
            store_root, hierarchy_dir, population, regime_name, holidays,
        )  # fmt: skip

    command.__doc__ = f"The {kind} report for a unit and its children."
    return command


def _report(
    kind: str,
    period: str,
    principal: str,
    tier: str,
    unit: str | None,
    hierarchy: str,
    basis: str,
    annualise: bool,
    fmt: str,
    out: Path | None,
    store_root: str | None,
    hierarchy_dir: Path | None,
    population: Path | None,
    regime_name: str,
    holidays: Path | None,
) -> None:
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
    log = AccessLog(access_log_path(root, settings.access_log, settings.home))
    try:
        config = report_config(regime_name, holidays)
        h = load_hierarchy(hierarchy_dir, population)
    except ReportError as exc:
        fail(exc)
    assert isinstance(h, Hierarchy)
    con = _open(root, tier, hierarchy_dir)
    try:
        request = ReportRequest(
            kind=kind, tier=tier, unit=unit, period=period, principal=principal,
            hierarchy_mode=hierarchy, basis=basis, annualise=annualise, trend=fmt == "html",
        )  # fmt: skip
        result = run_report(con, h, request, access_log=log, config=config)
    except ReportError as exc:
        fail(exc)
    finally:
        con.close()
    _emit(result, fmt, out)


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


for _kind in KINDS:
    report_app.command(_kind)(_report_command(_kind))


def register(app: typer.Typer) -> None:
    """Add ``tuyen report`` (reports and sign-off) to the root app."""
    from sinks.signoff.cli import register as register_signoff

    register_signoff(report_app)
    app.add_typer(report_app, name="report")
