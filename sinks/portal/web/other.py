"""The public page (no login), approvals and the clinicians' patient look-up."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sinks.portal.approvals import ApprovalError
from sinks.portal.patient import SummaryUnavailable
from sinks.portal.public import MEASURES, PublicTable
from sinks.portal.reporting import BadRequest, parse_period
from sinks.portal.scope import Role
from sinks.portal.web.base import context, csrf_ok, page, require

__all__ = ["approvals_decide", "approvals_page", "patient_page", "public_data", "public_page"]


async def _public(request: Request) -> tuple[str, list[str], dict[str, PublicTable]]:
    portal = (await context(request)).portal
    months = await run_in_threadpool(portal.public_months)
    month = request.query_params.get("period") or (months[-1] if months else "")
    if month:
        period = parse_period(month)
        if len(period.months) != 1:
            raise BadRequest("the public page is per month (YYYY-MM)")
        month = period.label
    tables = await run_in_threadpool(portal.public_tables, month) if month else {}
    return month, months, tables


async def public_page(request: Request) -> Response:
    ctx = await context(request)
    month, months, tables = await _public(request)
    province = request.query_params.get("province")
    await run_in_threadpool(
        ctx.portal.audit, None, "public:page", "allowed", period=month, province=province
    )
    provinces = []
    if tables:
        first = next(iter(tables.values()))
        provinces = [(r.code, r.name) for r in first.rows if r.level == "province"]
    return page(
        ctx,
        "public.html",
        month=month,
        months=months,
        tables=tables,
        measures=MEASURES,
        province=province if province in {p for p, _ in provinces} else None,
        provinces=provinces,
        threshold=ctx.portal.config.suppression_threshold,
    )


async def public_data(request: Request) -> Response:
    """``/public/data/{measure}.{csv|parquet}``: the same suppressed tables, long format."""
    ctx = await context(request)
    measure, _, fmt = request.path_params["file"].partition(".")
    if fmt not in {"csv", "parquet"} or measure not in {m.code for m in MEASURES}:
        raise BadRequest("use /public/data/<staff|beds|equipment|stockouts>.<csv|parquet>")
    month, _months, tables = await _public(request)
    await run_in_threadpool(
        ctx.portal.audit, None, "public:download", "allowed", period=month, measure=measure
    )
    rows = tables[measure].long_rows() if tables else []
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("period", pa.string()),
                ("measure", pa.string()),
                ("level", pa.string()),
                ("province_code", pa.string()),
                ("unit_code", pa.string()),
                ("unit_name", pa.string()),
                ("column", pa.string()),
                ("value", pa.int64()),
                ("suppressed", pa.bool_()),
            ]
        ),
    )
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buf)
        media = "text/csv; charset=utf-8"
    else:
        pq.write_table(table, buf, compression="zstd")
        media = "application/vnd.apache.parquet"
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{measure}-{month}.{fmt}"'},
    )


async def approvals_page(request: Request, notice: str | None = None) -> Response:
    ctx = await context(request)
    account = require(ctx, Role.APPROVER)
    backend = ctx.portal.approvals
    waiting = await run_in_threadpool(backend.waiting_for, account)
    recent = await run_in_threadpool(backend.recent, account)
    await run_in_threadpool(ctx.portal.audit, account, "page:approvals", "allowed")
    return page(ctx, "approvals.html", waiting=waiting, recent=recent, notice=notice)


async def approvals_decide(request: Request) -> Response:
    """Approve or send back one station-month (signed with the account's key, sent to the
    broker; refused when it is not waiting for this account)."""
    ctx = await context(request)
    account = require(ctx, Role.APPROVER)
    form = await csrf_ok(ctx)
    station, period = request.path_params["station"], request.path_params["period"]
    approve = form.get("decision") == "approve"
    fields = {"station": station, "period": period}
    try:
        done = await run_in_threadpool(
            ctx.portal.approvals.decide, account, station, period, approve,
            str(form.get("note") or ""),
        )  # fmt: skip
    except ApprovalError as exc:
        await run_in_threadpool(
            ctx.portal.audit, account, "approval", "refused", reason=str(exc)[:300], **fields
        )
        return await approvals_page(request, notice=str(exc))
    await run_in_threadpool(
        ctx.portal.audit, account, "approval", "allowed", decision=done.status, **fields
    )
    return await approvals_page(request, notice=ctx.t(f"status_{done.status}"))


async def patient_page(request: Request) -> Response:
    """MERGE HOOK (interop): clinicians look a patient up; every look-up is logged."""
    ctx = await context(request)
    account = require(ctx, Role.CLINICIAN)
    health_id = request.query_params.get("health_id", "").strip()[:32]
    summary, message = None, None
    if health_id:
        try:
            doc = await run_in_threadpool(ctx.portal.patient_summary, account, health_id)
            summary = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
            outcome = "allowed"
        except SummaryUnavailable:
            message, outcome = ctx.t("patient_unavailable"), "error"
        except LookupError:
            message, outcome = ctx.t("no_data"), "not-found"
        except PermissionError:
            message, outcome = ctx.t("error_refused"), "refused"
        await run_in_threadpool(
            ctx.portal.audit, account, "patient:summary", outcome,
            facility=account.facility, subject=health_id,
        )  # fmt: skip
    return page(ctx, "patient.html", health_id=health_id, summary=summary, message=message)
