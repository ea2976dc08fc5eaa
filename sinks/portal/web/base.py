"""What every route shares: who is asking, the language, CSRF, templates, errors.

The principal of a request is the account behind its session cookie or its bearer token;
no parameter can change it. Forms that change state carry the session's CSRF token (and a
cross-origin ``Origin`` is refused); bearer-token requests are not cookie-borne and need none.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sinks.portal import charts, i18n
from sinks.portal.scope import Account, Role
from sinks.portal.service import Portal
from sinks.portal.sessions import Session

__all__ = [
    "Ctx",
    "Forbidden",
    "NeedLogin",
    "context",
    "csrf_ok",
    "page",
    "portal_of",
    "require",
]

SESSION_COOKIE = "tuyen_session"
LOGIN_COOKIE = "tuyen_login"
LANG_COOKIE = "tuyen_lang"


class NeedLogin(Exception):
    """No (live) session: HTML requests go to the login page, API requests get 401."""


class Forbidden(Exception):
    """Authenticated, but the account lacks the role, or a form lacked its CSRF token."""

    def __init__(self, key: str = "error_forbidden") -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Ctx:
    """One request: its portal, language, account and session (if any)."""

    request: Request
    portal: Portal
    lang: str
    account: Account | None = None
    session: Session | None = None
    extra_cookies: list[tuple[str, str, int]] = field(default_factory=list)

    def t(self, key: str, **fields: object) -> str:
        return i18n.t(self.lang, key, **fields)


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def cookie_name(portal: Portal, base: str) -> str:
    """``__Host-`` prefixed names when cookies are ``Secure`` (bound to this origin)."""
    return f"__Host-{base}" if portal.config.secure_cookies else base


async def context(request: Request) -> Ctx:
    portal = portal_of(request)
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "vi")
    ctx = Ctx(request, portal, lang if lang in i18n.LANGS else "vi")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        ctx.account = await run_in_threadpool(portal.tokens.resolve, auth[7:].strip())
        if ctx.account is None:
            raise NeedLogin()
        return ctx
    cookie = request.cookies.get(cookie_name(portal, SESSION_COOKIE))
    if cookie:
        ctx.session = await run_in_threadpool(portal.sessions.resolve, cookie)
        ctx.account = ctx.session.account if ctx.session else None
    return ctx


def require(ctx: Ctx, *roles: Role) -> Account:
    """The account, when it has one of ``roles`` (any role when none are given)."""
    if ctx.account is None:
        raise NeedLogin()
    if roles and not ctx.account.has(*roles):
        raise Forbidden()
    return ctx.account


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return origin == own


async def csrf_ok(ctx: Ctx) -> FormData:
    """The request's form, after checking its CSRF token; ``Forbidden`` otherwise."""
    form = await ctx.request.form()
    if ctx.account is not None and ctx.account.via_token:
        return form
    token = str(form.get("csrf") or ctx.request.headers.get("x-csrf-token") or "")
    if (
        ctx.session is None
        or not _same_origin(ctx.request)
        or not hmac.compare_digest(token, ctx.session.csrf)
    ):
        raise Forbidden("error_csrf")
    return form


# ---- the login form's CSRF (no session yet): a signed double-submit cookie --------------


def login_token(portal: Portal) -> tuple[str, str]:
    """``(cookie value, form value)`` for the login form."""
    nonce = secrets.token_urlsafe(24)
    signer = TimestampSigner(portal.config.session_key.get_secret_value(), salt="tuyen-login")
    return signer.sign(nonce).decode(), nonce


def login_token_ok(portal: Portal, cookie: str | None, form_value: str) -> bool:
    if not cookie or not form_value:
        return False
    signer = TimestampSigner(portal.config.session_key.get_secret_value(), salt="tuyen-login")
    try:
        nonce = signer.unsign(cookie.encode(), max_age=3600).decode()
    except (BadSignature, SignatureExpired, UnicodeError):
        return False
    return hmac.compare_digest(nonce, form_value)


# ---- templates -----------------------------------------------------------------------------

_ENV = Environment(
    loader=PackageLoader("sinks.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.globals.update(
    charts=charts,
    cadre_name=i18n.cadre_name,
    indicator_name=i18n.indicator_name,
    unit_label=i18n.unit_label,
    number=i18n.number,
    timestamp=i18n.timestamp,
    urlencode=urlencode,
    quote=quote,
    Role=Role,
)


def page(ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    lang = ctx.lang
    html = _ENV.get_template(template).render(
        lang=lang,
        t=lambda key, **f: i18n.t(lang, key, **f),
        fmt=lambda v: i18n.number(v, lang),
        account=ctx.account,
        csrf=ctx.session.csrf if ctx.session else "",
        path=ctx.request.url.path,
        query=str(ctx.request.url.query),
        **values,
    )
    response = HTMLResponse(html, status_code=status)
    for name, value, max_age in ctx.extra_cookies:
        set_cookie(ctx.portal, response, name, value, max_age)
    return response


def set_cookie(portal: Portal, response: Response, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(portal, base) if base != LANG_COOKIE else base,
        value,
        max_age=max_age,
        path="/",
        secure=portal.config.secure_cookies,
        httponly=True,
        samesite="strict" if base != LANG_COOKIE else "lax",
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(target: str | None, default: str = "/") -> str:
    """Only same-site paths (``/…``, never ``//host`` or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
