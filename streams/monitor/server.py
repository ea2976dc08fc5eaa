"""`tuyen monitor serve`: ``/`` (status page), ``/metrics`` (Prometheus), ``/api/status`` (JSON).

A stdlib ``ThreadingHTTPServer`` serves the latest snapshot; a background thread collects a
new one every interval. Small on purpose: no event loop, no framework.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.monitor.metrics import build_registry
from streams.monitor.page import render_page
from streams.monitor.service import Monitor

__all__ = ["MonitorServer"]

logger = logging.getLogger(__name__)


class MonitorServer:
    """Serves a :class:`Monitor`'s snapshots over HTTP on ``host:port`` (0 = a free port)."""

    def __init__(
        self, monitor: Monitor, host: str = "127.0.0.1", port: int = 0, refresh_s: int = 10
    ) -> None:
        self.monitor = monitor
        registry = build_registry(lambda: monitor.latest, lambda: monitor.errors)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/api/status":
                    snap = outer.monitor.latest
                    body = orjson.dumps(snap.as_dict() if snap else {"collecting": True})
                    self._send(HTTPStatus.OK, "application/json", body)
                elif path in ("/", "/index.html"):
                    html = render_page(outer.monitor.latest, refresh_s)
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", html.encode())
                elif path == "/healthz":
                    self._send(HTTPStatus.OK, "text/plain", b"ok\n")
                else:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

            def _send(self, status: HTTPStatus, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
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
