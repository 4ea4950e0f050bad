"""A hostile HTTP server on loopback: endless bodies and redirects, for the bounded-read tests.

`endless` paths answer 200 with a chunked body that never ends (the same 64 KiB chunk again and
again, so the server itself costs no memory) until the client hangs up; `redirect` paths answer
302 to a given location. Counts how many bytes it managed to send per path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = b"x_total 1\n# " + b"y" * 65520 + b"\n"  # 64 KiB of valid Prometheus text, cheap to parse


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-body is the point of these tests, not an error


@dataclass
class HostileServer:
    endless: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    _server: _Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_port)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> HostileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path not in self.endless:
            handler.send_error(404)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        try:
            while True:  # until the client hangs up
                handler.wfile.write(frame)
                self.sent[path] = self.sent.get(path, 0) + len(CHUNK)
        except OSError:
            handler.close_connection = True


def serve() -> Iterator[HostileServer]:
    server = HostileServer().start()
    try:
        yield server
    finally:
        server.stop()
