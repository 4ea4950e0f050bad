"""The daemon's HTTP endpoints on a threaded stdlib server: the Alertmanager webhook,
/healthz, /readyz and Prometheus /metrics. Handlers stay thin; the Daemon decides."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from agent.approval_api import ROUTES as APPROVAL_ROUTES
from agent.slack_actions import SLACK_PATH

if TYPE_CHECKING:
    from agent.daemon import Daemon

WEBHOOK_PATH = "/webhook/alertmanager"


def serve_http(daemon: Daemon, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"daemon": daemon})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    daemon: Daemon
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/readyz":
            ok, why = self.daemon.ready()
            self._send(200 if ok else 503, {"status": why})
        elif self.path == "/metrics":
            body, content_type = self.daemon.metrics.exposition()
            self._raw(200, body, content_type)
        else:
            self._send(404, {"error": f"no such endpoint: {self.path[:100]}"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path == SLACK_PATH and self.daemon.slack is not None:
            body = self._body()
            if body is not None:
                self._send(*self.daemon.slack.handle(dict(self.headers.items()), body))
            return
        verb = APPROVAL_ROUTES.get(path)
        if verb is not None:
            body = self._body()
            if body is not None:
                self._send(*self.daemon.approval_request(verb, dict(self.headers), body))
            return
        if self.path.split("?")[0] != WEBHOOK_PATH:
            self._send(404, {"error": f"POST to {WEBHOOK_PATH}"})
            return
        body = self._body()
        if body is None:
            return
        status, answer = self.daemon.receive_webhook(body, self.headers.get("Authorization"))
        self._send(status, answer)

    def _body(self) -> bytes | None:
        """Read the body, refusing before reading when it is declared too large."""
        limit = self.daemon.app.config.intake.max_body_bytes
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, {"error": "Content-Length required"})
            return None
        if length < 0 or length > limit:
            self.close_connection = True
            self._send(413, {"error": f"payload of {length} bytes is over the {limit}-byte limit"})
            return None
        return self.rfile.read(length)

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        self._raw(status, json.dumps(doc).encode(), "application/json")

    def _raw(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # structured logs come from the daemon, not the access log
