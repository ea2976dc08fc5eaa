"""Administrators: accounts, API tokens and the access log."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sinks.portal.accounts import AccountError
from sinks.portal.scope import Role
from sinks.portal.web.base import context, csrf_ok, page, require

__all__ = ["audit_page", "token_action", "user_action", "users_page", "users_submit"]


async def users_page(
    request: Request, notice: str | None = None, secret: str | None = None, status: int = 200
) -> Response:
    ctx = await context(request)
    require(ctx, Role.ADMINISTRATOR)
    users = await run_in_threadpool(ctx.portal.accounts.list)
    tokens = await run_in_threadpool(ctx.portal.tokens.list)
    return page(
        ctx,
        "admin_users.html",
        status=status,
        users=users,
        tokens=tokens,
        roles=list(Role),
        notice=notice,
        secret=secret,
    )


async def users_submit(request: Request) -> Response:
    """Add an account; the initial password is generated and shown once."""
    ctx = await context(request)
    admin = require(ctx, Role.ADMINISTRATOR)
    form = await csrf_ok(ctx)
    username = str(form.get("username") or "")
    password = secrets.token_urlsafe(12)
    try:
        await run_in_threadpool(
            ctx.portal.accounts.add,
            username,
            password,
            str(form.get("scope") or ""),
            [str(r) for r in form.getlist("roles")],
            facility=str(form.get("facility") or "") or None,
        )
    except AccountError as exc:
        return await users_page(request, notice=str(exc), status=400)
    await run_in_threadpool(
        ctx.portal.audit, admin, "admin:user-add", "allowed", target=username.lower()
    )
    return await users_page(
        request, notice=ctx.t("user_created", name=username.lower()), secret=password
    )


async def user_action(request: Request) -> Response:
    """``/admin/users/{name}/{disable|enable|unlock|token}``."""
    ctx = await context(request)
    admin = require(ctx, Role.ADMINISTRATOR)
    form = await csrf_ok(ctx)
    name, action = request.path_params["name"], request.path_params["action"]
    accounts = ctx.portal.accounts
    secret = None
    try:
        if action == "disable":
            await run_in_threadpool(accounts.set_disabled, name, True)
        elif action == "enable":
            await run_in_threadpool(accounts.set_disabled, name, False)
        elif action == "unlock":
            await run_in_threadpool(accounts.unlock, name)
        elif action == "token":
            label = str(form.get("token_name") or "script")
            _tid, secret = await run_in_threadpool(ctx.portal.tokens.create, name, label)
        else:
            return await users_page(request, notice=f"unknown action {action}", status=400)
    except AccountError as exc:
        return await users_page(request, notice=str(exc), status=400)
    await run_in_threadpool(ctx.portal.audit, admin, f"admin:{action}", "allowed", target=name)
    return await users_page(request, notice=ctx.t("done"), secret=secret)


async def token_action(request: Request) -> Response:
    """``/admin/tokens/{id}/revoke``."""
    ctx = await context(request)
    admin = require(ctx, Role.ADMINISTRATOR)
    await csrf_ok(ctx)
    tid = request.path_params["tid"]
    try:
        await run_in_threadpool(ctx.portal.tokens.revoke, tid)
    except AccountError as exc:
        return await users_page(request, notice=str(exc), status=400)
    await run_in_threadpool(ctx.portal.audit, admin, "admin:token-revoke", "allowed", target=tid)
    return await users_page(request, notice=ctx.t("done"))


async def audit_page(request: Request) -> Response:
    ctx = await context(request)
    admin = require(ctx, Role.ADMINISTRATOR)
    log = ctx.portal.log
    check = await run_in_threadpool(log.verify)
    entries = await run_in_threadpool(log.tail, 300)
    await run_in_threadpool(ctx.portal.audit, admin, "admin:audit", "allowed")
    return page(ctx, "admin_audit.html", check=check, entries=entries)
