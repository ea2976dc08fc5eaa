"""Logging in and out, and the language switch."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sinks.portal import i18n
from sinks.portal.web.base import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Forbidden,
    context,
    cookie_name,
    csrf_ok,
    local_path,
    login_token,
    login_token_ok,
    page,
    redirect,
    set_cookie,
)

__all__ = ["lang", "login_form", "login_submit", "logout"]


async def login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    ctx = await context(request)
    cookie, nonce = login_token(ctx.portal)
    ctx.extra_cookies.append((LOGIN_COOKIE, cookie, 3600))
    nxt = local_path(request.query_params.get("next"))
    return page(ctx, "login.html", status=status, login_nonce=nonce, error=error, next=nxt)


async def login_submit(request: Request) -> Response:
    ctx = await context(request)
    portal = ctx.portal
    form = await request.form()
    nonce = str(form.get("login_csrf") or "")
    cookie = request.cookies.get(cookie_name(portal, LOGIN_COOKIE))
    if not login_token_ok(portal, cookie, nonce):
        await run_in_threadpool(portal.audit, None, "login", "refused", reason="csrf")
        raise Forbidden("error_csrf")
    username = str(form.get("username") or "")[:64]
    result = await run_in_threadpool(
        portal.accounts.authenticate, username, str(form.get("password") or "")[:1024]
    )
    if result.account is None:
        outcome = "locked" if result.locked else "failed"
        await run_in_threadpool(
            portal.audit,
            None,
            "login",
            outcome,
            username=username.lower(),
            failures=result.failures,
        )
        await asyncio.sleep(portal.accounts.policy.delay(result.failures))  # slowed ...
        if result.locked:  # ... then locked
            until = i18n.timestamp(result.locked_until, ctx.lang)
            return await login_form(request, ctx.t("login_locked", until=until), 429)
        return await login_form(request, ctx.t("login_failed"), 401)
    value, _session = await run_in_threadpool(portal.sessions.create, result.account)
    await run_in_threadpool(portal.audit, result.account, "login", "allowed")
    response = redirect(local_path(str(form.get("next") or "/")))
    set_cookie(portal, response, SESSION_COOKIE, value, int(portal.sessions.absolute))
    response.delete_cookie(cookie_name(portal, LOGIN_COOKIE), path="/")
    return response


async def logout(request: Request) -> Response:
    ctx = await context(request)
    if ctx.session is not None:
        await csrf_ok(ctx)
        await run_in_threadpool(ctx.portal.sessions.end, ctx.session.id)
        await run_in_threadpool(ctx.portal.audit, ctx.account, "logout", "allowed")
    response = redirect("/login")
    response.delete_cookie(
        cookie_name(ctx.portal, SESSION_COOKIE),
        path="/",
        secure=ctx.portal.config.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


async def lang(request: Request) -> Response:
    """``/lang/en?next=/u/12``: remember the language (a preference cookie, no server state)."""
    ctx = await context(request)
    code = request.path_params["code"]
    response = redirect(local_path(request.query_params.get("next")))
    if code in i18n.LANGS:
        set_cookie(ctx.portal, response, LANG_COOKIE, code, 365 * 86400)
    return response
