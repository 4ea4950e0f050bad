"""Bounded HTTP reads for the probes: a byte cap on every body, a deadline on every exchange,
and redirects followed only within the same host.

A health endpoint, a metrics page or a status page can answer with an endless body, trickle it
forever, or redirect to a third party; none of that may cost more than `max_bytes` of memory or
`timeout_s` of time, nor take a request (and its query token) to another host. `fetch` streams the
body and stops at the cap, saying so (`Answer.truncated`); it never raises for an HTTP status.
Used by `http-health`, `app-metrics` and `provider-status`; httpx is imported by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from agent.model.errors import PermanentError

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 5  # hops within one host (http -> https, a trailing slash, a moved path)
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Answer:
    """What came back: status, headers, at most `max_bytes` of body, and whether more was cut."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    url: str  # where it was finally answered (after same-host redirects)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def same_host(a: str, b: str) -> bool:
    """Same hostname (any scheme or port: http -> https on one host is allowed)."""
    return (urlsplit(a).hostname or "").lower() == (urlsplit(b).hostname or "").lower()


async def fetch(client: httpx.AsyncClient, method: str, url: str, *, timeout_s: float,
                max_bytes: int, follow: bool = False, also_hosts: Iterable[str] = ()) -> Answer:
    """`method url`, the whole exchange within `timeout_s`; the body cut at `max_bytes`.

    With `follow`, a redirect is followed when it stays on the URL's host (or goes to one of
    `also_hosts`); a redirect elsewhere is a `PermanentError` naming the host, not the URL.
    A deadline overrun raises `httpx.ReadTimeout`, like any other httpx timeout.
    """
    import httpx

    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(client, method, url, timeout_s, max_bytes, follow, set(also_hosts))
    except TimeoutError as e:
        raise httpx.ReadTimeout(f"no complete answer within {timeout_s:g}s") from e


async def _follow(client: httpx.AsyncClient, method: str, url: str, timeout_s: float, max_bytes: int,
                  follow: bool, also_hosts: set[str]) -> Answer:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        answer = await _once(client, method, current, timeout_s, max_bytes)
        location = answer.headers.get("location")
        if not (follow and answer.status in REDIRECTS and location):
            return answer
        target = urljoin(current, location)
        host = (urlsplit(target).hostname or "").lower()
        if not same_host(url, target) and host not in also_hosts:
            raise PermanentError(f"redirected to another host ({host or 'no host'}); not followed "
                                 "(list it in allow_redirects_to to allow it)", code="redirect_refused")
        current = target
        method = "GET" if answer.status == 303 else method
    raise PermanentError(f"more than {MAX_REDIRECTS} redirects", code="redirect_loop")


async def _once(client: httpx.AsyncClient, method: str, url: str, timeout_s: float,
                max_bytes: int) -> Answer:
    async with client.stream(method, url, timeout=timeout_s) as response:
        body, truncated = await read_capped(response, max_bytes)
        return Answer(response.status_code, dict(response.headers), body, truncated, url)


async def read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of a streamed body, and whether the body went on past them."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = max_bytes - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True  # leaving the stream closes the connection
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def cap_note(max_bytes: int) -> str:
    """How a truncated body is described in an observation."""
    return f"truncated: the body went on past {max_bytes // 1024} KiB and was cut there"
