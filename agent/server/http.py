"""The daemon's HTTP server: aiohttp's low-level server behind a declarative route table.

Each `Route` names a method, a path and a framework-independent handler
`handle(headers, body) -> (status, answer)`; a synchronous handler runs in a small bounded pool
of worker threads of its endpoint class, so ledger I/O never runs on the event loop and one
class's handlers never wait for another's threads. Defences, in the order a request meets them:
a connection cap (429 and close), a deadline for the request head (slowloris), the in-flight cap
of the route's endpoint class (`budget`: webhook, approvals, diagnose, slack, metrics; 429 with
Retry-After, so no class can starve another), the route's `authorize(headers)` (possibly a
coroutine: the approval API's TokenReview) before any body byte is read (401), the declared and
actual body size (413), a deadline for the whole body (408). Mount an endpoint with one line in
`agent.server.routes.routes()`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from agent.model import truncate

log = structlog.get_logger("hemostat.http")

Answer = tuple[int, Any]  # JSON-able document, or Raw
Handler = Callable[[Mapping[str, str], bytes], Answer | Awaitable[Answer]]
Authorize = Callable[[Mapping[str, str]], Answer | Awaitable[Answer | None] | None]
_REFUSAL = b'{"error": "too many open connections; retry"}'
TOO_MANY_CONNECTIONS = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(_REFUSAL), _REFUSAL))


@dataclass(frozen=True)
class Raw:
    """A non-JSON answer body (Prometheus exposition, the web view's pages) and any headers it
    needs (Set-Cookie, Content-Security-Policy, Location)."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class Head(Mapping[str, str]):
    """What a handler gets as `headers`: the request's headers (case-insensitive, as aiohttp
    gives them) plus its `path` and `query`, for GET endpoints that take an id or filters."""

    def __init__(self, headers: Mapping[str, str], path: str = "/", query: Mapping[str, str] | None = None):
        self._headers, self.path, self.query = headers, path, dict(query or {})

    def __getitem__(self, key: str) -> str:
        return self._headers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


@dataclass(frozen=True)
class Route:
    """One endpoint. `authorize` sees only the headers and may refuse before the body is read;
    `budget` names its endpoint class (its own in-flight cap and worker threads; None: no cap,
    for health checks, which must answer under load); `max_body_bytes` lowers the server's;
    `prefix=True` makes it answer every path under `path` (which ends in "/": ids, pages)."""

    method: str
    path: str
    handle: Handler
    authorize: Authorize | None = None
    reads_body: bool = False
    budget: str | None = "webhook"
    max_body_bytes: int | None = None
    prefix: bool = False


# In flight per class: reads and the web view are people's pages, never the webhook's slots.
BUDGETS = {"approvals": 8, "diagnose": 8, "slack": 8, "metrics": 4, "reads": 8}


@dataclass(frozen=True)
class Limits:
    """How much any client may take from the daemon. Units are in the names."""

    header_timeout_s: float = 10.0  # to send the request head; also the keep-alive idle time
    body_timeout_s: float = 10.0  # to send the whole body after the head (408 past it)
    max_body_bytes: int = 1 << 20
    max_connections: int = 256  # open sockets; one more gets 429 and is closed
    max_inflight: int = 32  # webhook requests being handled at once (bodies: this x max_body_bytes)
    workers: int = 4  # threads for the webhook's synchronous handler (ledger writes)
    drain_s: float = 5.0  # to finish in-flight requests at shutdown
    # the other endpoint classes' in-flight caps (each also gets `class_workers` threads)
    budgets: Mapping[str, int] = field(default_factory=lambda: dict(BUDGETS))
    class_workers: int = 2


class _ProtocolLog(logging.Handler):
    """aiohttp's reports of malformed requests as one structured line: a client's garbage must
    not put multi-line tracebacks (or its bytes, unbounded) into the JSON log."""

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        text = f"{type(error).__name__}: {error}" if error else record.getMessage()
        log.warning("malformed request refused", error=truncate(" ".join(text.split()), 200))


PROTOCOL_LOG = logging.getLogger("hemostat.http.protocol")
PROTOCOL_LOG.propagate = False
PROTOCOL_LOG.addHandler(_ProtocolLog())


class _CappedServer(web.Server):
    """aiohttp's low-level server, refusing connections past `max_connections`."""

    def __init__(self, handler: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self.connections) > self.max_connections:
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()


@dataclass
class HttpServer:
    routes: Sequence[Route]
    limits: Limits = field(default_factory=Limits)
    _table: dict[str, dict[str, Route]] = field(default_factory=dict)
    _inflight: dict[str | None, int] = field(default_factory=dict)
    _pools: dict[str | None, ThreadPoolExecutor] = field(default_factory=dict)
    _runner: web.ServerRunner | None = None
    port: int = 0

    async def start(self, host: str, port: int) -> None:
        for route in self.routes:
            self._table.setdefault(route.path, {})[route.method] = route
        for budget in {route.budget for route in self.routes}:
            workers = self.limits.workers if budget == "webhook" else self.limits.class_workers
            self._pools[budget] = ThreadPoolExecutor(workers, thread_name_prefix=f"http-{budget}")
        # No cancellation when a client leaves: a handler then finishes its worker-thread job
        # before its in-flight slot frees, so `max_inflight` bounds the pool's queue too.
        server = _CappedServer(self._dispatch, self.limits.max_connections, handler_cancellation=False,
                               keepalive_timeout=self.limits.header_timeout_s, lingering_time=0,
                               auto_decompress=False, max_headers=64, access_log=None,
                               logger=PROTOCOL_LOG)
        self._runner = web.ServerRunner(server, shutdown_timeout=self.limits.drain_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=128)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish within `drain_s`, close the rest."""
        if self._runner is not None:
            await self._runner.cleanup()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self._table.get(request.path, {}).get(request.method) or self._under(request)
        if route is None:
            return self._not_routed(request)
        budget = route.budget
        if budget is not None and self._inflight.get(budget, 0) >= self.cap(budget):
            return _reply(429, {"error": f"too many {budget} requests in flight; retry"}, close=True,
                          headers={"Retry-After": "1"})
        self._inflight[budget] = self._inflight.get(budget, 0) + 1
        try:
            return await self._serve(route, request)
        except Exception as e:  # a handler bug answers 500 and is logged; the server stays up
            log.error("handler failed", path=route.path, error=f"{type(e).__name__}: {e}")
            return _reply(500, {"error": "internal error"}, close=True)
        finally:
            self._inflight[budget] -= 1

    def cap(self, budget: str) -> int:
        """The in-flight cap of an endpoint class (the webhook's is `max_inflight`)."""
        return self.limits.budgets.get(budget, self.limits.max_inflight)

    def _under(self, request: web.BaseRequest) -> Route | None:
        """The longest prefix route that covers the request's path."""
        covering = [r for r in self.routes if r.prefix and r.method == request.method
                    and request.path.startswith(r.path)]
        return max(covering, key=lambda r: len(r.path), default=None)

    async def _serve(self, route: Route, request: web.BaseRequest) -> web.StreamResponse:
        headers: Mapping[str, str] = Head(request.headers, request.path, request.query)
        refusal = route.authorize(headers) if route.authorize else None
        if inspect.isawaitable(refusal):
            refusal = await refusal
        if refusal is not None:
            return _answer(refusal, close=True)
        body = b""
        if route.reads_body:
            body_or_refusal = await self._read_body(request, route.max_body_bytes)
            if isinstance(body_or_refusal, web.StreamResponse):
                return body_or_refusal
            body = body_or_refusal
        return _answer(await self._call(route, headers, body))

    async def _call(self, route: Route, headers: Mapping[str, str], body: bytes) -> Answer:
        handle = route.handle
        if inspect.iscoroutinefunction(handle):
            result: Answer = await handle(headers, body)
            return result
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pools[route.budget], handle, headers, body)
        return await answer if inspect.isawaitable(answer) else answer

    async def _read_body(self, request: web.BaseRequest,
                         route_limit: int | None) -> bytes | web.StreamResponse:
        limit = min(self.limits.max_body_bytes, route_limit or self.limits.max_body_bytes)
        if request.headers.get("Content-Encoding", "identity").lower() != "identity":
            return _reply(415, {"error": "compressed bodies are not accepted"}, close=True)
        declared = request.content_length
        if declared is not None and declared > limit:
            return _too_large(declared, limit)
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        return _too_large(size, limit)
                    chunks.append(chunk)
        except TimeoutError:
            return _reply(408, {"error": f"body not received within {self.limits.body_timeout_s:g} s"},
                          close=True)
        except (ConnectionError, web.RequestPayloadError) as e:  # the client left or mangled it
            return _reply(400, {"error": f"body incomplete: {type(e).__name__}"}, close=True)
        return b"".join(chunks)

    def _not_routed(self, request: web.BaseRequest) -> web.StreamResponse:
        methods = self._table.get(request.path)
        if methods:
            allow = ", ".join(sorted(methods))
            return _reply(405, {"error": f"{request.method} not allowed; use {allow}"}, close=True,
                          headers={"Allow": allow})
        return _reply(404, {"error": f"no such endpoint: {request.path[:100]}"}, close=True)


def _too_large(size: int, limit: int) -> web.StreamResponse:
    return _reply(413, {"error": f"payload of {size}+ bytes is over the {limit}-byte limit"}, close=True)


def _answer(answer: Answer, close: bool = False) -> web.StreamResponse:
    status, doc = answer
    if isinstance(doc, Raw):
        return web.Response(status=status, body=doc.body,
                            headers={"Content-Type": doc.content_type, **dict(doc.headers)})
    return _reply(status, doc, close=close)


def _reply(status: int, doc: Any, close: bool = False,
           headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    response = web.Response(status=status, body=json.dumps(doc).encode(),
                            headers={"Content-Type": "application/json", **(headers or {})})
    if close:  # a refused request's unread body must not be parsed as the next request
        response.force_close()
    return response
