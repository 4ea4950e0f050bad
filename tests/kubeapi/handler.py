"""The HTTP/1.1 layer: JSON and text responses, chunked watch streams, connection tracking."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import traceback
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from tests.kubeapi.errors import ApiError
from tests.kubeapi.router import Response

if TYPE_CHECKING:
    from tests.kubeapi.server import FakeApiServer


class KubeHTTPServer(ThreadingHTTPServer):
    """Threaded loopback server that can cut its open keep-alive connections on shutdown."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeApiServer) -> None:
        super().__init__(("127.0.0.1", 0), KubeHandler)
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class KubeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net/http (the real apiserver) sets on every connection: without it a
    # keep-alive answer written in two parts waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: KubeHTTPServer
    METHODS: ClassVar[tuple[str, ...]] = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type") or "application/json"
        try:
            response = self.server.fake.dispatch(
                self.command, self.path, url.path, query, body, content_type,
                self.headers.get("Accept") or "", headers=self.headers)
        except ApiError as exc:
            response = Response(exc.code, exc.body(), headers=_error_headers(exc.code))
        except Exception as exc:  # a bug in the fake must surface as a 500, not a hang
            traceback.print_exc()
            response = Response(500, ApiError(500, f"fake apiserver bug: {exc!r}").body())
        if response.text_stream is not None:
            self._send_text_stream(response.text_stream)
        elif response.stream is not None:
            self._send_stream(response.stream)
        else:
            self._send(response)

    def _send(self, response: Response) -> None:
        if isinstance(response.body, str):
            data, ctype = response.body.encode(), "text/plain"
        else:
            data, ctype = json.dumps(response.body).encode(), "application/json"
        self.send_response(response.code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for event in events:
                self._chunk((json.dumps(event) + "\n").encode())
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_text_stream(self, texts: Iterator[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for text in texts:
                if text:
                    self._chunk(text.encode())
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _error_headers(code: int) -> dict[str, str]:
    return {"Retry-After": "1"} if code in (429, 503) else {}

