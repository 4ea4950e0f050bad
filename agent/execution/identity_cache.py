"""TokenReview and SubjectAccessReview answers, asked off the loop with a deadline and remembered.

The daemon's API handlers ask the cluster who a token belongs to and what RBAC lets them do
(agent.execution.identity_kube). Asked naively, one request costs two apiserver calls, and a
hanging apiserver holds a thread per request for as long as it hangs, so a handful of garbage
tokens could exhaust the threads the executor and the webhook need. Here:
- the calls run in a pool of their own (`workers` threads), never the loop's default one;
- each answer is awaited for at most `timeout_s` (then 503: "retry"), and the client call itself
  carries the same deadline, so a hung thread is freed too;
- answers are cached for `ttl_s`, refusals as well as grants (as kube-apiserver's webhook
  authenticator and authorizer do), keyed by the token's SHA-256, never the token itself; a
  temporary failure (timeout, 5xx) is not cached;
- concurrent questions with the same key share one call.
All methods are coroutines for the daemon's loop (the cache is touched from that thread only).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent.execution.identity_kube import AuthError, KubernetesIdentities, Permission
from agent.model import TemporaryError
from agent.model.identity import Identity

Who = tuple[Identity, dict[str, list[str]]]
MAX_ENTRIES = 4096  # oldest dropped first: a flood of distinct garbage tokens cannot grow memory


@dataclass
class ReviewCache:
    """`KubernetesIdentities`, bounded in time, threads and apiserver calls."""

    identities: KubernetesIdentities
    ttl_s: float = 10.0
    timeout_s: float = 10.0
    workers: int = 4
    clock: Callable[[], float] = time.monotonic
    _answers: OrderedDict[str, tuple[float, Any]] = field(default_factory=OrderedDict)
    _asking: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = None

    async def authenticate(self, token: str) -> Who:
        """Who sent `token`; AuthError(401) if the cluster does not vouch for it."""
        key = "authn:" + hashlib.sha256(token.encode()).hexdigest()
        answer: Who = await self._ask(key, lambda: self.identities.authenticate(token))
        return answer

    async def authorize(self, who: Identity, extra: dict[str, list[str]], need: Permission) -> None:
        """AuthError(403) naming the permission unless RBAC grants it to `who`."""
        facts = (who.source, who.subject, who.uid, tuple(sorted(who.groups)),
                 tuple(sorted((k, tuple(v)) for k, v in extra.items())), need)
        key = "authz:" + hashlib.sha256(repr(facts).encode()).hexdigest()
        await self._ask(key, lambda: self.identities.authorize(who, extra, need))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _ask(self, key: str, call: Callable[[], Any]) -> Any:
        cached = self._answers.get(key)
        if cached is not None and self.clock() < cached[0]:
            return _settle(cached[1])
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._call(key, call))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return _settle(await asyncio.shield(asking))

    async def _call(self, key: str, call: Callable[[], Any]) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="kube-review")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                answer: Any = await loop.run_in_executor(self._pool, call)
        except TimeoutError:
            raise TemporaryError(f"the Kubernetes API did not answer within {self.timeout_s:g} s; "
                                 "retry", code="kube_unavailable") from None
        except AuthError as e:
            if e.status not in (401, 403):  # the daemon's own permission problem: not cached
                raise
            answer = e
        self._remember(key, answer)
        return answer

    def _remember(self, key: str, answer: Any) -> None:
        self._answers[key] = (self.clock() + self.ttl_s, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > MAX_ENTRIES:
            self._answers.popitem(last=False)


def _settle(answer: Any) -> Any:
    if isinstance(answer, AuthError):
        raise AuthError(answer.status, str(answer))
    return answer
