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
from sinks.portal.scope import Account, Role
from sinks.portal.web.base import Ctx, context, csrf_ok, page, require
from sinks.summary import MAX_PURPOSE

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


class _PortalLog:
    """The patient summary's access-log entries, written through the portal's audit writer
    with the account (so one entry per look-up, in the portal's hash chain)."""

    def __init__(self, ctx: Ctx, account: Account) -> None:
        self.ctx, self.account = ctx, account

    def append(self, entry: dict[str, object]) -> object:
        fields = {k: v for k, v in entry.items() if k not in {"principal", "outcome"}}
        outcome = str(entry.get("outcome", "error"))
        self.ctx.portal.audit(self.account, "patient:summary", outcome, **fields)
        return entry


async def patient_page(request: Request) -> Response:
    """Clinicians look a patient up (POST: the health id stays out of URLs and histories)
    with a stated purpose; every look-up is logged (see :mod:`sinks.portal.patient`)."""
    ctx = await context(request)
    account = require(ctx, Role.CLINICIAN)
    if request.method != "POST":
        return page(ctx, "patient.html", health_id="", purpose="", summary=None, message=None)
    form = await csrf_ok(ctx)
    health_id = str(form.get("health_id") or "").strip()[:32]
    purpose = str(form.get("purpose") or "").strip()[:MAX_PURPOSE]
    summary, message, status = None, None, 200
    try:
        doc = await run_in_threadpool(
            ctx.portal.patient_summary, account, health_id, purpose, _PortalLog(ctx, account)
        )
        summary = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    except SummaryUnavailable:
        message, status = ctx.t("patient_unavailable"), 503
    except LookupError:
        message, status = ctx.t("patient_not_found"), 404
    except PermissionError:
        message, status = ctx.t("error_refused"), 403
    except ValueError:
        message, status = ctx.t("patient_bad_request"), 400
    return page(
        ctx, "patient.html", status, health_id=health_id, purpose=purpose, summary=summary,
        message=message,
    )  # fmt: skip
