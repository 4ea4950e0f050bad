"""Loopback HTTP servers with injected latency, for the benchmarks.

One asyncio loop in a background thread serves every connection (HTTP/1.1, keep-alive), so a
thousand probes waiting on a 50 ms answer cost the bench process almost nothing; a thread per
connection (tests/loopback.py) would make the bench's own servers the bottleneck on 2 cores
and measure them, not Hemostat. The listen backlog is deep for the same reason. The app's
Prometheus error counters climb on every scrape (an error spike).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Body = Callable[[], bytes]
BACKLOG = 4096
MAX_HEADER_BYTES = 65536


@dataclass
class DelayedHttp:
    """Answers GET/HEAD on its routes after `delay_s`; 404 elsewhere."""

    delay_s: float = 0.0
    routes: dict[str, Body] = field(default_factory=dict)
    hits: int = 0
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayedHttp:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="bench-http", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(
            self._connection, "127.0.0.1", 0, backlog=BACKLOG, limit=MAX_HEADER_BYTES))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ", 2)[:2]
                self.hits += 1
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(self._response(method, path.decode().split("?")[0]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    def _response(self, method: bytes, path: str) -> bytes:
        body_of = self.routes.get(path)
        status, body = ("200 OK", body_of()) if body_of else ("404 Not Found", b"not found\n")
        head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head if method == b"HEAD" else head + body


def failing_metrics() -> Body:
    """A Prometheus page whose errors climb 40% as fast as requests: an error spike, in an app
    that served a million requests at 0.01% errors before (its lifetime ratio, which
    app-metrics takes as the baseline, stays far below the spike)."""
    count = {"n": 0}  # only the server's loop thread touches it

    def body() -> bytes:
        count["n"] += 1
        n = count["n"]
        requests, errors = 1_000_000 + 200 * n, 100 + 80 * n
        return ("# TYPE http_requests_total counter\n"
                f'http_requests_total{{code="200"}} {requests - errors}\n'
                f'http_requests_total{{code="500"}} {errors}\n'
                "# TYPE http_requests_errors_total counter\n"
                f"http_requests_errors_total {errors}\n").encode()

    return body


def app_server(delay_s: float) -> DelayedHttp:
    """An app with /metrics (errors climbing) and /health (ok), each answer `delay_s` late."""
    return DelayedHttp(delay_s, {"/metrics": failing_metrics(), "/health": lambda: b"ok\n"}).start()


def health_server(delay_s: float) -> DelayedHttp:
    return DelayedHttp(delay_s, {"/health": lambda: b"ok\n"}).start()
