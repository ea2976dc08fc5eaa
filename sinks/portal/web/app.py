"""``create_app``: the Starlette application of ``tuyen portal serve``."""

from __future__ import annotations

from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sinks.portal.service import Portal
from sinks.portal.web import admin, auth, other, pages
from sinks.portal.web.base import Ctx, Forbidden, NeedLogin, context, page, redirect
from sinks.reports import AccessDenied, BadRequest

__all__ = ["create_app"]

#: no script at all, nothing from another origin, no framing
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the headers above to every response; ``no-store`` on everything but /static."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += _HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def _wants_json(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ") or (
        "application/json" in request.headers.get("accept", "")
    )


async def _ctx(request: Request) -> Ctx:
    try:
        return await context(request)
    except NeedLogin:
        return Ctx(request, request.app.state.portal, "vi")


async def _need_login(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "authentication required"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target, safe='')}")


async def _refused(request: Request, exc: Exception) -> Response:
    ctx = await _ctx(request)
    if _wants_json(request):
        return JSONResponse({"error": "access refused"}, status_code=403)
    scope = str(ctx.account.scope) if ctx.account else ""
    return page(ctx, "error.html", 403, title=ctx.t("error_refused"),
                text=ctx.t("error_refused_text", scope=scope))  # fmt: skip


async def _forbidden(request: Request, exc: Exception) -> Response:
    ctx = await _ctx(request)
    key = exc.key if isinstance(exc, Forbidden) else "error_forbidden"
    if _wants_json(request):
        return JSONResponse({"error": key}, status_code=403)
    return page(ctx, "error.html", 403, title=ctx.t("error_forbidden"), text=ctx.t(key))


async def _bad(request: Request, exc: Exception) -> Response:
    ctx = await _ctx(request)
    text = exc.message if isinstance(exc, BadRequest) else str(exc)
    if _wants_json(request):
        return JSONResponse({"error": text}, status_code=400)
    return page(ctx, "error.html", 400, title=ctx.t("error_bad"), text=text)


async def _not_found(request: Request, exc: Exception) -> Response:
    ctx = await _ctx(request)
    return page(ctx, "error.html", 404, title=ctx.t("error_not_found"), text=request.url.path)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(portal: Portal) -> Starlette:
    """The web application over one :class:`Portal`."""
    routes = [
        Route("/", pages.home),
        Route("/healthz", _health),
        Route("/login", auth.login_form, methods=["GET"]),
        Route("/login", auth.login_submit, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/lang/{code}", auth.lang),
        Route("/u/{unit}", pages.dashboard),
        Route("/u/{unit}/i/{code}", pages.indicator),
        Route("/u/{unit}/completeness", pages.completeness),
        Route("/download/{kind}/{file}", pages.download),
        Route("/approvals", other.approvals_page),
        Route("/approvals/{station:str}/{period:str}", other.approvals_decide, methods=["POST"]),
        Route("/patient", other.patient_page, methods=["GET", "POST"]),
        Route("/public", other.public_page),
        Route("/public/data/{file}", other.public_data),
        Route("/admin/users", admin.users_page, methods=["GET"]),
        Route("/admin/users", admin.users_submit, methods=["POST"]),
        Route("/admin/users/{name}/{action}", admin.user_action, methods=["POST"]),
        Route("/admin/tokens/{tid}/revoke", admin.token_action, methods=["POST"]),
        Route("/admin/audit", admin.audit_page),
        Mount("/static", StaticFiles(packages=[("sinks.portal", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            NeedLogin: _need_login,
            AccessDenied: _refused,
            Forbidden: _forbidden,
            BadRequest: _bad,
            404: _not_found,
        },
    )
    app.state.portal = portal
    return app
