"""``tuyen report``: the reports (``resources``, ``health``, ``completeness``) and the monthly
sign-off (``status``, ``submit``, ``approve``, ``send-back``, ``lock``: :mod:`deploy.cli.signoff`).

Thin over :mod:`sinks.reports` and :mod:`sinks.signoff`: a tool for whoever holds a store's
credentials. It opens the root that holds the report's data (the national root; the root of
the unit's province) and reads what this account's file permissions or bucket credentials
allow, nothing more. ``--as`` grants nothing: it only narrows (a report outside the named
subtree is refused) and names the requester in the access log; without it the scope is the
opened root's owner.

Exit codes: 0 done, 2 bad request (period, unit, tier …), 3 access refused, 4 not allowed in
the month's state, 5 the broker did not confirm a decision (``ReportError.exit_code``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import duckdb
import orjson
import typer
from rich.console import Console

from deploy.cli.common import console as err
from deploy.cli.common import fail, settings, store_access_log
from deploy.settings import Settings
from schemas.hierarchy import Hierarchy
from sinks.catalog_sql import CATALOG_TIERS
from sinks.reports.calendar import DEFAULT_REGIME, REGIMES
from sinks.reports.config import ReportConfig, regime
from sinks.reports.exceptions import ReportError
from sinks.reports.indicators import KINDS
from sinks.reports.request import BASES
from sinks.reports.scope import MODES

#: A day of the pre-2025 map, for units that no longer exist.
REORGANISED_BEFORE = date(2025, 6, 30)

__all__ = [
    "ReportFormat",
    "fail_report",
    "load_hierarchy",
    "log_root",
    "open_store",
    "report_app",
    "report_root",
]

#: Choices derived from the reports package's own declarations (declared once, there).
ReportTier = StrEnum("ReportTier", {t: t for t in CATALOG_TIERS})  # type: ignore[misc]
HierarchyMode = StrEnum("HierarchyMode", {m: m for m in MODES})  # type: ignore[misc]
Basis = StrEnum("Basis", {b: b for b in BASES})  # type: ignore[misc]
Regime = StrEnum("Regime", {r: r for r in REGIMES})  # type: ignore[misc]
_NATIONAL = ReportTier("national")
_AS_RECORDED = HierarchyMode("as-recorded")
_LATEST = Basis("latest")
_DEFAULT_REGIME = Regime(DEFAULT_REGIME)


class ReportFormat(StrEnum):
    """What `tuyen report` writes."""

    TABLE = "table"
    CSV = "csv"
    PARQUET = "parquet"
    HTML = "html"
    FHIR = "fhir"


report_app = typer.Typer(
    help="Reports (resources, health, completeness) and the monthly sign-off.",
    no_args_is_help=True,
)


def fail_report(exc: ReportError) -> NoReturn:
    """Print a report or sign-off error and exit with its code (2 bad request, 3 refused, 4 not
    allowed in the month's state, 5 not confirmed by the broker)."""
    err.print(f"[red]{exc.label}[/red] {exc.message}" if exc.label else f"[red]{exc.message}[/red]")
    raise typer.Exit(exc.exit_code) from None


def _holidays(path: Path | None) -> frozenset[date]:
    if path is None:
        return frozenset()
    days = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            days.add(date.fromisoformat(text))
    return frozenset(days)


def load_hierarchy(hierarchy_dir: Path | None, population: Path | None = None) -> Hierarchy:
    """The hierarchy (default, or a province's folder), with a province's own population
    table in place of the default rows for the stations it lists."""
    from schemas.hierarchy.io import read_population

    h = Hierarchy.default() if hierarchy_dir is None else Hierarchy.from_directory(hierarchy_dir)
    if population is not None:
        h = h.with_population(read_population(population))
    return h


def _owner(h: Hierarchy, tier: str, unit: str | None) -> tuple[str, str | None]:
    """The scope of the store a report reads, and its province (``None``: national)."""
    from schemas.hierarchy import HierarchyError, Tier, restate_province

    if tier == "national" or unit is None:
        return "national", None
    code: str | None = unit
    for at in (date.today(), REORGANISED_BEFORE):
        code = unit
        try:
            while code is not None and h.unit(code, at).tier is not Tier.PROVINCE:
                parent = h.parent(code, at)
                code = parent.code if parent else None
        except HierarchyError:
            continue
        if code is not None:
            province = restate_province(code)
            return f"province:{province}", province
    raise ReportError(f"unknown unit {unit!r}")


def report_root(s: Settings, h: Hierarchy, tier: str, unit: str | None) -> tuple[list[str], str]:
    """The roots a report on ``unit`` at ``tier`` opens and the scope they belong to (the
    default principal): the root of the unit's province; for a national report, every
    province's root (national reports are computed from the province tier,
    ``sinks.reports.source_tier``, and leave it only suppressed)."""
    from sinks.reports.config import source_tier

    owner, province = _owner(h, tier, unit)
    roots = s.store_roots()
    if province is not None:
        return [roots.province_root(province)], owner
    every = roots.for_store(source_tier(tier))
    local = [r for r in every if "://" not in r or r.startswith("file://")]
    found = [r for r in every if r not in local or Path(r.removeprefix("file://")).exists()]
    return found or every[:1], owner


def log_root(s: Settings, roots: list[str]) -> str:
    """Where the access log of a request on ``roots`` goes: beside the one root, or under
    the base (``TUYEN_STORE_ROOT``) for several."""
    return roots[0] if len(roots) == 1 else s.store_root


def open_store(
    root: str | list[str], tier: str, hierarchy_dir: Path | None
) -> duckdb.DuckDBPyConnection:
    from sinks.catalog import open_catalog
    from sinks.reports.config import source_tier

    return open_catalog(root, source_tier(tier), hierarchy=hierarchy_dir)


_open = open_store  # the tests replace it with a shared connection


def _report_command(kind: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        period: Annotated[str, typer.Option(help="2026-10 | 2026-Q3 | 2026-H1 | 2026-9M | 2026")],
        principal: Annotated[
            str | None,
            typer.Option(
                "--as",
                help="narrow to a subtree (national | province:CODE | district:CODE); grants "
                "nothing: the scope is what this account can read",
            ),
        ] = None,
        tier: Annotated[ReportTier, typer.Option(help="The tier the unit belongs to.")] = _NATIONAL,
        unit: Annotated[str | None, typer.Option(help="unit code (default VN if national)")] = None,
        hierarchy: Annotated[
            HierarchyMode,
            typer.Option("--hierarchy", help="as-recorded, or current (restate into 2025 units)"),
        ] = _AS_RECORDED,
        basis: Annotated[
            Basis, typer.Option(help="latest, or submitted (each station-month as approved)")
        ] = _LATEST,
        annualise: Annotated[
            bool, typer.Option(help="scale per-year rates of a shorter period to a year")
        ] = False,
        fmt: Annotated[
            ReportFormat, typer.Option("--format", help="Output format.")
        ] = ReportFormat.TABLE,
        out: Annotated[Path | None, typer.Option(help="output file (needed for parquet)")] = None,
        store_root: Annotated[
            str | None,
            typer.Option(help="one root holding the tier (default: its owner's, TUYEN_*_ROOT)"),
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
            Regime, typer.Option("--regime", help="reporting deadlines")
        ] = _DEFAULT_REGIME,
        holidays: Annotated[
            Path | None,
            typer.Option(help="extra days off, one YYYY-MM-DD a line (Vietnam's are built in)"),
        ] = None,
    ) -> None:
        from sinks.reports.engine import run_report
        from sinks.reports.request import ReportRequest

        if fmt is ReportFormat.PARQUET and out is None:
            fail("--format parquet needs --out PATH")
        s = settings(ctx)
        try:
            config = ReportConfig(
                regime=regime(regime_name.value),
                holidays=_holidays(holidays),
                suppression_threshold=s.suppression_threshold,
            )
            h = load_hierarchy(hierarchy_dir, population)
            roots, owner = report_root(s, h, tier.value, unit)
        except ReportError as exc:
            fail_report(exc)
        if store_root is not None:
            roots = [store_root]
        log = store_access_log(ctx, log_root(s, roots))
        request = ReportRequest(
            kind=kind, tier=tier.value, unit=unit, period=period,
            principal=principal or owner,
            hierarchy_mode=hierarchy.value, basis=basis.value, annualise=annualise,
            trend=fmt is ReportFormat.HTML,
        )  # fmt: skip
        con = _open(roots[0] if len(roots) == 1 else roots, tier.value, hierarchy_dir)
        try:
            result = run_report(con, h, request, access_log=log, config=config)
        except ReportError as exc:
            fail_report(exc)
        finally:
            con.close()
        _emit(result, fmt, out)

    command.__doc__ = f"The {kind} report for a unit and its children."
    return command


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


for _kind in KINDS:
    report_app.command(_kind)(_report_command(_kind))
