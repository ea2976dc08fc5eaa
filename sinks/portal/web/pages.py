"""Dashboards, indicator pages, completeness and downloads: every one a data request,
checked against the account's scope and written to the access log, allowed or refused."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from schemas.hierarchy import HierarchyError, Tier
from sinks.portal.reporting import (
    MODES,
    AccessDenied,
    BadRequest,
    Period,
    Report,
    ReportQuery,
    by_code,
    parse_period,
    period_family,
    shift_period,
)
from sinks.portal.scope import Account, Role
from sinks.portal.web.base import Ctx, context, page, redirect, require

__all__ = ["completeness", "dashboard", "download", "home", "indicator"]

_READERS = (Role.ANALYST, Role.APPROVER)
_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "fhir.json": "application/fhir+json",
}


async def home(request: Request) -> Response:
    ctx = await context(request)
    account = require(ctx)
    if account.has(*_READERS):
        return redirect(f"/u/{account.scope.home}")
    if account.has(Role.APPROVER):
        return redirect("/approvals")
    if account.has(Role.ADMINISTRATOR):
        return redirect("/admin/users")
    return redirect("/patient")


def _params(ctx: Ctx, account: Account, unit: str) -> tuple[Period, str, str]:
    q = ctx.request.query_params
    label = q.get("period") or ctx.portal.latest_month(account.scope)
    period = parse_period(label)
    mode = q.get("hierarchy", "as-recorded")
    if mode not in MODES:
        raise BadRequest(f"unknown hierarchy mode {mode!r}")
    view = q.get("view", "latest")
    return period, mode, view


async def _reports(
    ctx: Ctx, account: Account, queries: list[ReportQuery], action: str, **log: Any
) -> list[Report]:
    """Run the reports of one request for the account; log one entry whatever the outcome."""
    portal = ctx.portal
    q = queries[0]
    fields = {
        "kind": ",".join(x.kind for x in queries),
        "unit": q.unit,
        "period": q.period,
        "hierarchy": q.hierarchy,
        "path": ctx.request.url.path,
        **log,
    }
    try:
        out = [await run_in_threadpool(portal.reports.run, account.scope, x) for x in queries]
    except (AccessDenied, BadRequest) as exc:
        outcome = "refused" if isinstance(exc, AccessDenied) else "error"
        fields["reason"] = exc.message
        await run_in_threadpool(portal.audit, account, action, outcome, **fields)
        raise
    await run_in_threadpool(portal.audit, account, action, "allowed", **fields)
    return out


async def _report(ctx: Ctx, account: Account, q: ReportQuery, action: str, **log: Any) -> Report:
    return (await _reports(ctx, account, [q], action, **log))[0]


def _tiles(report: Report) -> list[tuple[Any, Any, list[float | None]]]:
    """(indicator, unit cell, trend values) per shown indicator."""
    series: dict[str, list[float | None]] = {}
    for p in report.trend:
        series.setdefault(p.indicator, []).append(p.value)
    return [
        (ind, report.cell(ind.code), series.get(ind.code, [])) for ind in report.shown_indicators()
    ]


def _crumbs(ctx: Ctx, account: Account, unit: str, at: date) -> list[tuple[str, str]]:
    """The units from the account's own unit down to ``unit`` (code, name)."""
    h = ctx.portal.h
    chain: list[tuple[str, str]] = []
    cur: str | None = unit
    while cur is not None:
        try:
            name = h.unit(cur, at).name if cur != "VN" else "Việt Nam"
        except HierarchyError:
            name = cur
        chain.append((cur, name))
        if cur == account.scope.home:
            break
        try:
            parent = h.parent(cur, at) if h.tier_of(cur) is not Tier.PROVINCE else None
        except HierarchyError:
            parent = None
        cur = parent.code if parent else ("VN" if h.tier_of(cur) is Tier.PROVINCE else None)
    return [c for c in reversed(chain) if account.scope.covers(h, c[0], at) or c[0] == "VN"]


def _common(
    ctx: Ctx, account: Account, unit: str, period: Period, mode: str, view: str, report: Report
) -> dict[str, Any]:
    return {
        "unit": unit,
        "unit_name": report.unit_name,
        "tier": report.tier,
        "period": period,
        "family": period_family(period),
        "prev_period": shift_period(period, -1),
        "next_period": shift_period(period, 1),
        "mode": mode,
        "modes": MODES,
        "view": view,
        "crumbs": _crumbs(ctx, account, unit, report.reference_date),
        "children": report.children,
    }


async def dashboard(request: Request) -> Response:
    ctx = await context(request)
    account = require(ctx, *_READERS)
    unit = request.path_params["unit"]
    period, mode, view = _params(ctx, account, unit)
    queries = [
        ReportQuery(kind, unit, period.label, mode, view, trend=True)
        for kind in ("health", "resources")
    ]
    reports = await _reports(ctx, account, queries, "page:dashboard")
    return page(
        ctx,
        "dashboard.html",
        reports=[(r.kind, _tiles(r)) for r in reports],
        **_common(ctx, account, unit, period, mode, view, reports[0]),
    )


async def indicator(request: Request) -> Response:
    ctx = await context(request)
    account = require(ctx, *_READERS)
    unit, code = request.path_params["unit"], request.path_params["code"]
    try:
        ind = by_code(code)
    except KeyError:
        raise BadRequest(f"unknown indicator {code!r}") from None
    period, mode, view = _params(ctx, account, unit)
    report = await _report(
        ctx, account, ReportQuery(ind.kind, unit, period.label, mode, view, trend=True),
        "page:indicator", indicator=code,
    )  # fmt: skip
    return page(
        ctx,
        "indicator.html",
        report=report,
        ind=ind,
        cell=report.cell(code),
        child_cells=report.child_cells(code),
        trend=[p for p in report.trend if p.indicator == code],
        **_common(ctx, account, unit, period, mode, view, report),
    )


async def completeness(request: Request) -> Response:
    ctx = await context(request)
    account = require(ctx, *_READERS)
    unit = request.path_params["unit"]
    period, mode, view = _params(ctx, account, unit)
    report = await _report(
        ctx, account, ReportQuery("completeness", unit, period.label, mode, view),
        "page:completeness",
    )  # fmt: skip
    return page(
        ctx,
        "completeness.html",
        report=report,
        **_common(ctx, account, unit, period, mode, view, report),
    )


async def download(request: Request) -> Response:
    """``/download/{kind}/{unit}.{csv|parquet|fhir.json}``: the library's own writers."""
    ctx = await context(request)
    account = require(ctx, *_READERS)
    kind, name = request.path_params["kind"], request.path_params["file"]
    unit, _, fmt = name.partition(".")
    if fmt not in _FORMATS:
        raise BadRequest(f"unknown format {fmt!r}: use csv, parquet or fhir.json")
    period, mode, view = _params(ctx, account, unit)
    only = request.query_params.get("indicator")
    report = await _report(
        ctx, account, ReportQuery(kind, unit, period.label, mode, view),
        "download", format=fmt, indicator=only,
    )  # fmt: skip
    reports = ctx.portal.reports
    if fmt == "csv":
        body = reports.csv_bytes(report)
    elif fmt == "parquet":
        body = await run_in_threadpool(reports.parquet_bytes, report)
    else:
        body = reports.fhir_bytes(report, only)
    stem = f"{kind}-{report.tier}-{unit}-{period.label}" + (f"-{only}" if only else "")
    return Response(
        body,
        media_type=_FORMATS[fmt],
        headers={"content-disposition": f'attachment; filename="{stem}.{fmt}"'},
    )
