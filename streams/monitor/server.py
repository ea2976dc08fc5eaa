"""`tuyen monitor serve`: ``/`` (status page), ``/group/<g>`` (one group), ``/metrics``
(Prometheus), ``/api/status`` (JSON), ``/healthz`` (liveness, no data) and Burrow's read API,
so tools built for Burrow work:

- ``/v3/kafka`` → ``{"clusters": [<cluster>]}``
- ``/v3/kafka/<cluster>/consumer`` → ``{"consumers": [...]}``
- ``/v3/kafka/<cluster>/consumer/<group>/lag`` → ``{"status": ConsumerGroupStatus}`` with
  every partition (``/status``: only partitions that are not OK); 404 with NOTFOUND for an
  unknown group, as Burrow answers.

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
import socket
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from streams.monitor.burrow import Status
from streams.monitor.metrics import build_registry
from streams.monitor.model import GroupLag, Snapshot
from streams.monitor.page import render_group, render_page
from streams.monitor.service import Monitor

__all__ = ["MonitorServer", "burrow_response", "is_loopback"]

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


def _request_info(path: str) -> dict[str, str]:
    return {"url": path, "host": socket.gethostname()}


def burrow_response(
    snap: Snapshot | None, cluster: str, path: str
) -> tuple[HTTPStatus, dict[str, Any]]:
    """Burrow's JSON for a ``/v3/kafka...`` path (Burrow's shapes and status codes)."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    info = _request_info(path)

    def error(code: HTTPStatus, message: str) -> tuple[HTTPStatus, dict[str, Any]]:
        return code, {"error": True, "message": message, "request": info}

    if parts == ["v3", "kafka"]:
        return HTTPStatus.OK, {
            "error": False,
            "message": "cluster list returned",
            "clusters": [cluster],
            "request": info,
        }
    if len(parts) < 3 or parts[2] != cluster:
        return error(HTTPStatus.NOT_FOUND, "cluster not found")
    if snap is None:
        return error(HTTPStatus.SERVICE_UNAVAILABLE, "collecting, try again")
    groups = {g.group: g for g in snap.groups if g.status is not Status.NOTFOUND}
    if parts[3:] == ["consumer"]:
        return HTTPStatus.OK, {
            "error": False,
            "message": "consumer list returned",
            "consumers": sorted(groups),
            "request": info,
        }
    if len(parts) == 6 and parts[3] == "consumer" and parts[5] in ("lag", "status"):
        name = parts[4]
        group = groups.get(name) or GroupLag(name, "NOTFOUND", Status.NOTFOUND, (), complete=1.0)
        status = group.burrow_status(cluster, show_all=parts[5] == "lag")
        code = HTTPStatus.NOT_FOUND if group.status is Status.NOTFOUND else HTTPStatus.OK
        return code, {
            "error": False,
            "message": "consumer status returned",
            "status": status,
            "request": info,
        }
    return error(HTTPStatus.NOT_FOUND, "invalid request type")


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
        cluster = monitor.config.cluster_name
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
                elif path.startswith("/v3/kafka"):
                    code, doc = burrow_response(outer.monitor.latest, cluster, path)
                    self._send(code, "application/json", orjson.dumps(doc))
                elif path.startswith("/group/"):
                    snap = outer.monitor.latest
                    name = unquote(path[len("/group/") :])
                    group = (
                        next((g for g in snap.groups if g.group == name), None) if snap else None
                    )
                    html = render_group(snap, group, refresh_s, cluster)
                    code = HTTPStatus.OK if group is not None else HTTPStatus.NOT_FOUND
                    self._send(code, "text/html; charset=utf-8", html.encode())
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
