"""`tuyen monitor serve`: ``/`` (status page), ``/metrics`` (Prometheus), ``/api/status`` (JSON),
``/healthz`` (liveness, no data).

A stdlib ``ThreadingHTTPServer`` serves the latest snapshot; a background thread collects a
new one every interval. Small on purpose: no event loop, no framework.

With a ``token`` every path but ``/healthz`` needs it: ``Authorization: Bearer <token>``
(Prometheus' ``authorization`` / ``bearer_token_file``) or ``?token=<token>``; a page opened
with ``?token=`` also gets an HttpOnly cookie, so its links work. Compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from streams.monitor.metrics import build_registry
from streams.monitor.page import render_page
from streams.monitor.service import Monitor

__all__ = ["MonitorServer", "is_loopback"]

logger = logging.getLogger(__name__)

_COOKIE = "tuyen_monitor_token"


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _TokenCheck:
    """Does a request carry the token? The cookie holds a digest of it, never the token."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token.get_secret_value().encode()
        self.cookie_value = hashlib.sha256(b"tuyen-monitor-cookie:" + self._token).hexdigest()

    def check(self, path: str, authorization: str | None, cookie: str | None) -> tuple[bool, bool]:
        """(allowed, the token came in the query: set the cookie)."""
        if authorization and authorization[:7].lower() == "bearer ":
            return hmac.compare_digest(authorization[7:].strip().encode(), self._token), False
        query = path.split("?", 1)[1] if "?" in path else ""
        given = parse_qs(query).get("token")
        if given:
            ok = hmac.compare_digest(given[0].encode(), self._token)
            return ok, ok
        if cookie:
            try:
                morsel = SimpleCookie(cookie).get(_COOKIE)
            except CookieError:
                morsel = None
            if morsel is not None:
                return hmac.compare_digest(morsel.value, self.cookie_value), False
        return False, False


class MonitorServer:
    """Serves a :class:`Monitor`'s snapshots over HTTP on ``host:port`` (0 = a free port)."""

    def __init__(
        self,
        monitor: Monitor,
        host: str = "127.0.0.1",
        port: int = 0,
        refresh_s: int = 10,
        *,
        token: SecretStr | None = None,
    ) -> None:
        if token is None and not is_loopback(host):
            raise ValueError(f"the monitor needs a token to listen on {host} (not loopback)")
        self.monitor = monitor
        registry = build_registry(lambda: monitor.latest, lambda: monitor.errors)
        outer = self
        tokens = _TokenCheck(token) if token is not None else None

        class Handler(BaseHTTPRequestHandler):
            _cookie: str | None = None

            def _authorized(self) -> tuple[bool, bool]:
                if tokens is None:
                    return True, False
                return tokens.check(
                    self.path, self.headers.get("Authorization"), self.headers.get("Cookie")
                )

            def do_GET(self) -> None:
                self._cookie = None
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(HTTPStatus.OK, "text/plain", b"ok\n")
                    return
                allowed, by_query = self._authorized()
                if not allowed:
                    self._send(
                        HTTPStatus.UNAUTHORIZED,
                        "text/plain",
                        b"a bearer token is required\n",
                        {"WWW-Authenticate": 'Bearer realm="tuyen-monitor"'},
                    )
                    return
                if by_query and tokens is not None:
                    self._cookie = (
                        f"{_COOKIE}={tokens.cookie_value}; HttpOnly; SameSite=Strict; Path=/"
                    )
                if path == "/metrics":
                    self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/api/status":
                    snap = outer.monitor.latest
                    body = orjson.dumps(snap.as_dict() if snap else {"collecting": True})
                    self._send(HTTPStatus.OK, "application/json", body)
                elif path in ("/", "/index.html"):
                    html = render_page(outer.monitor.latest, refresh_s)
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", html.encode())
                else:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

            def _send(
                self,
                status: HTTPStatus,
                ctype: str,
                body: bytes,
                extra: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                if self._cookie is not None:
                    self.send_header("Set-Cookie", self._cookie)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("http %s", format % args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self, interval_s: float) -> None:
        """Start collecting and serving in background threads."""
        self.monitor.start(interval_s)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="tuyen-monitor-http", daemon=True
        )
        self._thread.start()
        logger.info("monitor serving port=%d interval=%.1f", self.port, interval_s)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.monitor.stop()
