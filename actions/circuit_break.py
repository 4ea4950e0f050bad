"""Action `circuit-break`: force-open an app's pybreaker breaker in Redis, for every instance at once.

Apps guard a dependency with `pybreaker.CircuitBreaker(state_storage=CircuitRedisStorage(...))`,
which keeps the breaker in Redis under `<namespace>:pybreaker:state` (`closed`, `open`,
`half-open`), `...:fail_counter`, `...:success_counter` and `...:opened_at` (integer Unix seconds,
UTC). Every instance reads `state` on every call, so writing `open` here makes all of them fail
fast with `CircuitBreakerError` without touching the dependency.

An open pybreaker breaker turns half-open once `now >= opened_at + reset_timeout`, so a forced
open sets `opened_at = now + ttl - reset_timeout`: the apps keep failing fast for exactly the TTL,
then make one trial call and close by themselves if the dependency is back. Without a TTL,
`opened_at` is set ten years ahead ("until reverted"). `revert` deletes `opened_at` rather than
lowering it: pybreaker only ever raises it, so a stale future value would pin every later trip open.
A `...:hemostat` key records who forced it and until when (it expires with the TTL); it is what
makes a second `execute` of the same plan a no-op. Called by the executor; Redis is guarded by the
breaker `redis:<host>:<port>`, and the Redis password never appears in a message.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from actions.base import Outcome
from agent.model import BreakerSpec, Change, PermanentError, Plan, Proposal, TargetSpec, TemporaryError
from agent.model.context import ActionContext
from agent.model.redact import redact

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

T = TypeVar("T")
FIELDS = ("state", "fail_counter", "success_counter", "opened_at", "hemostat")
UNTIL_REVERTED_S = 10 * 365 * 86400  # far ahead, yet far from datetime's year-9999 overflow
TIMEOUT_S = 3.0  # per Redis command: an incident is no time to wait on a dead Redis


@dataclass(frozen=True)
class _Where:
    """One breaker in one Redis: the key prefix, the address, and the secrets to mask."""

    breaker: str
    url: str
    host: str
    port: int
    prefix: str
    reset_timeout_s: float
    secret: str

    def key(self, field: str) -> str:
        return f"{self.prefix}{field}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _breaker_of(target: TargetSpec, subject: str) -> BreakerSpec:
    dep = target.dependency(subject)
    if dep is None or dep.breaker is None:
        raise PermanentError(f"{subject} has no breaker configured in target {target.name}",
                             code="breaker_unconfigured")
    return dep.breaker


def _where(spec: BreakerSpec) -> _Where:
    url = spec.redis_url.resolve()
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise PermanentError(f"secret {spec.redis_url.describe()} is not a redis:// URL",
                             code="redis_url_invalid")
    namespace = spec.name if spec.namespace is None else spec.namespace
    prefix = f"{namespace}:pybreaker:" if namespace else "pybreaker:"
    return _Where(spec.name, url, parts.hostname, parts.port or 6379, prefix, spec.reset_timeout_s,
                  parts.password or "")


def _translate(e: RedisError, where: _Where) -> Exception:
    from redis.exceptions import AuthenticationError, ResponseError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    reason = redact(str(e), (where.secret,))
    if isinstance(e, AuthenticationError) or (
            isinstance(e, ResponseError) and str(e).startswith(("NOAUTH", "WRONGPASS"))):
        return PermanentError(f"Redis at {where.address} refused the credentials: {reason}",
                              code="redis_auth")
    if isinstance(e, RedisTimeoutError):
        reason = f"no answer within {TIMEOUT_S:g}s"
    elif isinstance(e, RedisConnectionError) and ("Error 111 " in reason or "refused" in reason):
        reason = "connection refused"
    if isinstance(e, RedisConnectionError | RedisTimeoutError):
        return TemporaryError(f"Redis at {where.address} is unreachable: {reason}", delay=15,
                              code="redis_unavailable")
    return TemporaryError(f"Redis at {where.address} failed: {reason}", code="redis_error")


@contextlib.asynccontextmanager
async def _connect(where: _Where) -> AsyncIterator[Redis]:
    from redis.asyncio import Redis  # imported when the action runs: ~45 ms every start-up otherwise

    client = Redis.from_url(where.url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                            decode_responses=True, retry_on_timeout=False)
    try:
        yield client
    finally:
        await client.aclose()


async def _call(ctx: ActionContext, where: _Where, pending: Awaitable[T]) -> T:
    from redis.exceptions import RedisError

    with ctx.breakers.guard(f"redis:{where.address}"):
        try:
            return await pending
        except RedisError as e:
            raise _translate(e, where) from e


async def _snapshot(ctx: ActionContext, where: _Where, client: Redis) -> dict[str, str | None]:
    values = await _call(ctx, where, client.mget([where.key(f) for f in FIELDS]))
    return {f: None if v is None else str(v) for f, v in zip(FIELDS, values, strict=True)}


def _ttl(params: dict[str, Any], limits: dict[str, Any]) -> float | None:
    ttl, cap = params.get("ttl_s", limits.get("max_ttl_s")), limits.get("max_ttl_s")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise PermanentError(f"ttl_s must be a positive number of seconds, got {ttl!r}",
                             code="bad_params")
    if ttl is not None and cap is not None and ttl > cap:
        raise PermanentError(f"ttl_s {ttl:g} exceeds the policy limit max_ttl_s={cap:g}",
                             code="limit_exceeded")
    return None if ttl is None else float(ttl)


def _unknown(where: _Where) -> PermanentError:
    ns = where.prefix.removesuffix("pybreaker:").rstrip(":")
    return PermanentError(
        f"breaker {where.breaker!r} not found in Redis at {where.address}: key {where.key('state')} "
        f"does not exist (does the app use CircuitRedisStorage with namespace={ns!r}? "
        "pass create=true to create it anyway)", code="breaker_unknown")


def _epoch(when: datetime) -> int:
    return math.ceil(when.timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class CircuitBreakAction:
    name = "circuit-break"
    summary = "force-open the app's shared pybreaker breaker in Redis, for a TTL or until reverted"
    mutates = True

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        dep = target.dependency(subject)
        if dep is None:
            return f"{subject} is not a dependency of {target.name}"
        return None if dep.breaker is not None else f"{subject} has no breaker configured"

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        where = _where(_breaker_of(ctx.target, proposal.subject))
        ttl, create = _ttl(proposal.params, ctx.limits), bool(proposal.params.get("create", False))
        async with _connect(where) as client:
            now = await _snapshot(ctx, where, client)
        if now["state"] is None and not create:
            raise _unknown(where)
        lasting = f"for {ttl:g}s" if ttl else "until reverted"
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"force-open breaker {where.breaker!r} {lasting} for every app instance "
                    f"(Redis {where.address}, {where.key('state')}: {now['state'] or 'absent'} -> open)",
            changes=(Change(where.key("state"), "state", now["state"], "open"),
                     Change(where.key("opened_at"), "opened_at", now["opened_at"],
                            f"now + {ttl:g}s - reset_timeout {where.reset_timeout_s:g}s" if ttl
                            else "now + 10 years (until reverted)")),
            touches=(f"redis:{where.address}", *(where.key(f) for f in FIELDS)),
            state={"breaker": where.breaker, "redis": where.address, "prefix": where.prefix,
                   "ttl_s": ttl, "create": create, "before": now},
            blast_radius={"breakers": 1, "ttl_s": ttl},
        )

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        where = _where(_breaker_of(ctx.target, plan.subject))
        async with _connect(where) as client:
            now = await _snapshot(ctx, where, client)
            if now["state"] is None and not plan.state.get("create"):
                raise _unknown(where)
            if now["state"] == "open" and now["hemostat"]:
                return Outcome(True, f"breaker {where.breaker!r} already force-open: nothing changed",
                               {"changed": False, "mark": json.loads(now["hemostat"])})
            mark = await self._force_open(ctx, where, client, plan.state.get("ttl_s"))
        return Outcome(True, f"breaker {where.breaker!r} forced open until {mark['until'] or 'reverted'}",
                       {"changed": True, "mark": mark})

    async def _force_open(self, ctx: ActionContext, where: _Where, client: Redis,
                          ttl: float | None) -> dict[str, Any]:
        start = _epoch(ctx.now())
        until = start + math.ceil(ttl) if ttl else None
        opened_at = until - math.floor(where.reset_timeout_s) if until else start + UNTIL_REVERTED_S
        mark = {"by": ctx.actor, "at": _iso(start), "until": _iso(until) if until else None}
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(where.key("state"), "open")
            pipe.set(where.key("opened_at"), opened_at)
            pipe.setnx(where.key("fail_counter"), 0)
            pipe.set(where.key("success_counter"), 0)
            pipe.set(where.key("hemostat"), json.dumps(mark))
            if until:
                pipe.expireat(where.key("hemostat"), until)
            await _call(ctx, where, pipe.execute())
        return mark

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        where = _where(_breaker_of(ctx.target, plan.subject))
        async with _connect(where) as client:
            now = await _snapshot(ctx, where, client)
        facts = {"state": now["state"], "opened_at": now["opened_at"]}
        open_until = int(now["opened_at"] or 0) + where.reset_timeout_s
        if now["state"] == "open" and open_until > ctx.now().timestamp():
            return Outcome(True, f"breaker {where.breaker!r} is open for every app instance "
                                 f"until {_iso(math.ceil(open_until))}", facts)
        return Outcome(False, f"breaker {where.breaker!r} is not held open: "
                              f"{where.key('state')}={now['state'] or 'absent'}", facts)

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        where = _where(_breaker_of(ctx.target, plan.subject))
        async with _connect(where) as client, client.pipeline(transaction=True) as pipe:
            pipe.set(where.key("state"), "closed")
            pipe.set(where.key("fail_counter"), 0)
            pipe.set(where.key("success_counter"), 0)
            pipe.delete(where.key("opened_at"), where.key("hemostat"))
            await _call(ctx, where, pipe.execute())
        return Outcome(True, f"breaker {where.breaker!r} closed for every app instance",
                       {"state": "closed"})

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        where = _where(_breaker_of(ctx.target, plan.subject))
        ttl = _ttl({"ttl_s": plan.state["ttl_s"]} if plan.state.get("ttl_s") else {}, ctx.limits)
        async with _connect(where) as client:
            now = await _snapshot(ctx, where, client)
        if now["state"] is None and not plan.state.get("create"):
            raise _unknown(where)
        return Outcome(True, f"would force-open breaker {where.breaker!r} "
                             f"({now['state'] or 'absent'} -> open, "
                             f"{f'for {ttl:g}s' if ttl else 'until reverted'})",
                       {"state": now["state"], "ttl_s": ttl})
