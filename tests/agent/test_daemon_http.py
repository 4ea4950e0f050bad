"""The daemon's HTTP server in-process on loopback, spoken to over raw sockets: the token is
checked before any body byte, limits answer 413/408/429, stalled heads are closed, the watchdog
fails /healthz, and a route is mounted with one line."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.ledger.sqlite import SqliteLedger
from agent.model.config import Config
from agent.server.daemon import Daemon
from agent.server.http import HttpServer, Limits, Route
from agent.server.routes import limits as daemon_limits
from agent.server.routes import routes
from agent.server.watchdog import LoopWatchdog

TOKEN = "s3cret-token"


@contextmanager
def serving(route_table: list[Route], limits: Limits | None = None, daemon: Daemon | None = None) -> Iterator[int]:
    """Run the server on its own loop in a thread; yields the port. Limits default to the daemon's."""
    if limits is None:
        limits = daemon_limits(daemon.app.config.intake, 5) if daemon else Limits()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    if daemon is not None:
        daemon._loop = loop
    server = HttpServer(route_table, limits)
    asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    try:
        yield server.port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def exchange(port: int, raw: bytes, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """Send raw bytes, half-close, read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def post(body: bytes, token: str | None = TOKEN, length: int | None = None, path: str = "/webhook/alertmanager") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: hemostat\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    return head.encode() + body


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    (tmp_path / "token").write_text(TOKEN)
    config = Config(intake={"token": {"file": str(tmp_path / "token")}, "max_body_bytes": 4096})  # type: ignore[arg-type]
    return Daemon(build_app(config, Registry.discover()), SqliteLedger(tmp_path / "ledger.db"))


def test_a_wrong_token_is_refused_before_the_body_is_sent(daemon: Daemon) -> None:
    """Only the head goes out; a server that waited for the declared megabyte would never answer."""
    with serving(routes(daemon), daemon=daemon) as port:
        status, answer = exchange(port, post(b"", token="wrong", length=1 << 20))
    assert status == 401 and answer["error"] == "missing or wrong bearer token"
    assert daemon.ledger.events() == []


def test_an_empty_token_file_accepts_no_bearer_at_all(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("")
    with serving(routes(daemon), daemon=daemon) as port:
        for header in ("Bearer", "Bearer ", "bearer  ", "Basic "):
            raw = post(b"{}").replace(f"Bearer {TOKEN}".encode(), header.encode())
            assert exchange(port, raw)[0] == 401, header


def test_a_declared_oversize_body_gets_413_unread(daemon: Daemon) -> None:
    with serving(routes(daemon), daemon=daemon) as port:
        status, answer = exchange(port, post(b"", length=5000))
    assert status == 413 and "over the 4096-byte limit" in answer["error"]


def test_an_undeclared_oversize_chunked_body_gets_413(daemon: Daemon) -> None:
    head = (f"POST /webhook/alertmanager HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    with serving(routes(daemon), daemon=daemon) as port:
        status, answer = exchange(port, head + chunk * 2 + b"0\r\n\r\n")
    assert status == 413 and "over the 4096-byte limit" in answer["error"]


def test_a_body_slower_than_the_deadline_gets_408(daemon: Daemon) -> None:
    with serving(routes(daemon), Limits(body_timeout_s=0.3, max_body_bytes=4096), daemon=daemon) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(post(b"{", length=100))  # 1 of 100 bytes, then nothing
        status, answer = read_answer(sock)
    assert status == 408 and "not received within 0.3 s" in answer["error"]


def test_a_request_head_never_finished_is_closed_at_the_header_timeout(daemon: Daemon) -> None:
    with serving(routes(daemon), Limits(header_timeout_s=0.3, max_body_bytes=4096), daemon=daemon) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        assert sock.recv(100) == b""  # closed by the server, not by our 5 s timeout


def test_deep_json_is_a_400_not_a_dropped_connection(daemon: Daemon) -> None:
    with serving(routes(daemon), daemon=daemon) as port:
        for depth in (17, 2000):  # 2000: past the JSON parser's own recursion limit
            status, answer = exchange(port, post(b"[" * depth + b"]" * depth))
            assert (status, answer["error"]) == (400, "payload nests deeper than 16 levels")


def test_connections_past_the_cap_get_429_and_are_closed() -> None:
    table = [Route("GET", "/ping", lambda headers, body: (200, {"ok": True}))]
    with serving(table, Limits(max_connections=2)) as port:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
                status, answer = read_answer(third)
        finally:
            for sock in held:
                sock.close()
    assert status == 429 and "too many open connections" in answer["error"]


def test_requests_past_the_inflight_cap_get_429_with_retry_after() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        started.set()
        release.wait(10)
        return 200, {"ok": True}

    table = [Route("GET", "/slow", slow)]
    raw = b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
    with serving(table, Limits(max_inflight=1, workers=2)) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as first:
        first.sendall(raw)
        assert started.wait(5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
            second.sendall(raw)
            data = second.recv(4096)
        release.set()
        assert read_answer(first)[0] == 200
    assert data.startswith(b"HTTP/1.1 429") and b"Retry-After: 1" in data


def test_a_route_mounts_with_one_line_sync_or_async() -> None:
    async def hello(headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        return 200, {"hello": headers.get("X-Name"), "body": body.decode()}

    def echo(headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        return 201, {"thread": threading.current_thread().name.startswith("http")}

    table = [Route("POST", "/hello", hello, reads_body=True), Route("POST", "/echo", echo, reads_body=True)]
    with serving(table) as port:
        raw = post(b"hi", path="/hello").replace(b"Host: hemostat", b"Host: h\r\nX-Name: ann")
        assert exchange(port, raw) == (200, {"hello": "ann", "body": "hi"})
        assert exchange(port, post(b"", path="/echo")) == (201, {"thread": True})
        assert exchange(port, b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")[0] == 405
        assert exchange(port, b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n")[0] == 404


def test_healthz_fails_when_the_loop_stalls_past_the_threshold(daemon: Daemon) -> None:
    clock = {"now": 100.0}
    daemon.watchdog = LoopWatchdog(stall_s=10, interval_s=1, clock=lambda: clock["now"])
    daemon.watchdog.beat()
    with serving(routes(daemon), daemon=daemon) as port:
        get = b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        clock["now"] += 5
        assert exchange(port, get) == (200, {"status": "ok"})
        clock["now"] += 30
        status, answer = exchange(port, get)
    assert status == 503 and answer["status"].startswith("event loop stalled 34.0 s")


def test_a_late_heartbeat_is_a_stall_even_after_it_beats_again() -> None:
    clock = {"now": 0.0}
    watchdog = LoopWatchdog(stall_s=10, interval_s=1, clock=lambda: clock["now"])
    watchdog.beat()
    clock["now"] = 13.0
    watchdog.beat()  # the loop came back after 12 s of a blocking callback
    assert watchdog.health() == (False, "event loop stalled 12.0 s (limit 10 s)")
    clock["now"] = 14.0
    watchdog.beat()
    assert watchdog.health() == (True, "ok")


def test_with_the_webhook_off_its_path_is_404_and_the_body_is_never_read(tmp_path: Path) -> None:
    config = Config(intake={"webhook": False})  # type: ignore[arg-type]
    daemon = Daemon(build_app(config, Registry.discover()), SqliteLedger(tmp_path / "ledger.db"))
    with serving(routes(daemon), daemon=daemon) as port:
        status, answer = exchange(port, post(b"", token=None, length=1 << 20))
    assert status == 404 and "no such endpoint" in answer["error"]


def test_a_client_that_leaves_keeps_its_slot_until_the_worker_is_done() -> None:
    """Otherwise disconnecting clients could queue unbounded work (and bodies) in the pool."""
    started, release = threading.Event(), threading.Event()

    def slow(headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        started.set()
        release.wait(10)
        return 200, {"ok": True}

    raw = b"GET /slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    with serving([Route("GET", "/slow", slow)], Limits(max_inflight=1, workers=1)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as leaver:
            leaver.sendall(raw)
            assert started.wait(5)
        assert exchange(port, raw)[0] == 429  # the leaver's job still runs, so its slot is taken
        release.set()
        assert wait_for_200(port, raw)


def wait_for_200(port: int, raw: bytes) -> bool:
    for _ in range(100):
        if exchange(port, raw)[0] == 200:
            return True
        threading.Event().wait(0.05)
    return False


def test_a_body_cut_short_by_the_client_reaches_no_handler_and_logs_no_error(daemon: Daemon) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs, serving(routes(daemon), daemon=daemon) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(post(b'{"version": "4"', length=1000))
        assert exchange(port, b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")[0] == 200
    assert daemon.ledger.events() == []
    assert [e for e in logs if e["log_level"] == "error"] == []
