"""circuit-break against a real redis-server and a real app-side pybreaker breaker sharing it.

The "app" is two `pybreaker.CircuitBreaker`s with `CircuitRedisStorage` (two instances of one
service) calling a loopback HTTP dependency that counts its hits.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pybreaker
import pytest
import redis

from actions.circuit_break import CircuitBreakAction
from agent.model import (
    BreakerSpec,
    DependencySpec,
    PermanentError,
    Plan,
    Proposal,
    SecretRef,
    TargetSpec,
    TemporaryError,
)
from agent.model.context import ActionContext
from tests.loopback import LoopbackServer
from tests.services.redis import RedisServer

ENV = "HEMOSTAT_TEST_BREAKER_REDIS"


class App:
    """One app instance: its own Redis connection and breaker, sharing state through Redis."""

    def __init__(self, url: str, dependency: str, namespace: str = "stripe") -> None:
        self.redis = redis.Redis.from_url(url)
        storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, self.redis, namespace=namespace)
        self.breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60, state_storage=storage,
                                                name="stripe")
        self.dependency = dependency

    def charge(self) -> int:
        status: int = self.breaker.call(lambda: urllib.request.urlopen(self.dependency, timeout=2).status)
        return status


@pytest.fixture
def stripe(loopback: LoopbackServer) -> str:
    return loopback.route("/v1/charges", status=200, body="ok")


@pytest.fixture
def apps(redis_url: str, stripe: str) -> Iterator[list[App]]:
    instances = [App(redis_url, stripe), App(redis_url, stripe)]
    yield instances
    for app in instances:
        app.redis.close()


def _target(namespace: str | None = None) -> TargetSpec:
    breaker = BreakerSpec(name="stripe", redis_url=SecretRef(env=ENV), namespace=namespace)
    return TargetSpec(name="checkout", dependencies=[
        DependencySpec(name="stripe", url="http://127.0.0.1:9/health", breaker=breaker)])


def _ctx(now: datetime | None = None, **kwargs: Any) -> ActionContext:
    ctx = ActionContext(target=_target(kwargs.pop("namespace", None)), **kwargs)
    if now is not None:
        ctx.now = lambda: now
    return ctx


def _proposal(**params: Any) -> Proposal:
    return Proposal(id="p1", target="checkout", action="circuit-break", subject="stripe", params=params,
                    path=(), reason="stripe is down", created_at=datetime.now(UTC))


def _plan(ctx: ActionContext, **params: Any) -> Plan:
    return asyncio.run(CircuitBreakAction().plan(_proposal(**params), ctx))


@pytest.fixture(autouse=True)
def _redis_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, redis_url)


def test_forced_open_fails_every_instance_fast_and_revert_lets_calls_flow(
        apps: list[App], loopback: LoopbackServer, redis_url: str) -> None:
    assert [app.charge() for app in apps] == [200, 200]
    ctx, action = _ctx(), CircuitBreakAction()
    plan = _plan(ctx, ttl_s=300)
    assert asyncio.run(action.execute(plan, ctx)).ok
    for app in apps:
        with pytest.raises(pybreaker.CircuitBreakerError):
            app.charge()
    assert loopback.hits["/v1/charges"] == 2  # the dependency was not touched
    assert asyncio.run(action.verify(plan, ctx)).ok
    assert asyncio.run(action.revert(plan, ctx)).ok
    assert [app.charge() for app in apps] == [200, 200]
    assert loopback.hits["/v1/charges"] == 4
    raw = apps[0].redis
    assert raw.get("stripe:pybreaker:state") == b"closed"
    assert raw.get("stripe:pybreaker:fail_counter") == b"0"
    assert raw.get("stripe:pybreaker:opened_at") is None
    assert not asyncio.run(action.verify(plan, ctx)).ok


def test_plan_names_the_breaker_its_keys_and_its_current_state(apps: list[App], redis_url: str) -> None:
    apps[0].charge()
    plan = _plan(_ctx(), ttl_s=120)
    assert plan.summary.startswith("force-open breaker 'stripe' for 120s for every app instance")
    assert "stripe:pybreaker:state: closed -> open" in plan.summary
    assert plan.changes[0].resource == "stripe:pybreaker:state"
    assert (plan.changes[0].before, plan.changes[0].after) == ("closed", "open")
    assert "stripe:pybreaker:opened_at" in plan.touches
    assert plan.state["ttl_s"] == 120 and ":pw-" not in str(plan.to_json())


def test_executing_the_same_plan_twice_changes_nothing_the_second_time(
        apps: list[App], redis_url: str) -> None:
    ctx, action = _ctx(), CircuitBreakAction()
    plan = _plan(ctx, ttl_s=300)
    first = asyncio.run(action.execute(plan, ctx))
    opened_at = apps[0].redis.get("stripe:pybreaker:opened_at")
    second = asyncio.run(action.execute(plan, ctx))
    assert first.facts["changed"] and not second.facts["changed"]
    assert apps[0].redis.get("stripe:pybreaker:opened_at") == opened_at


def test_open_lasts_its_ttl_then_the_app_trials_and_closes_itself(
        apps: list[App], loopback: LoopbackServer, redis_url: str) -> None:
    action, real_now = CircuitBreakAction(), datetime.now(UTC)
    live = _ctx(now=real_now - timedelta(seconds=50))  # 10 s of a 60 s TTL left
    asyncio.run(action.execute(_plan(live, ttl_s=60), live))
    with pytest.raises(pybreaker.CircuitBreakerError):
        apps[0].charge()
    asyncio.run(action.revert(_plan(live), live))
    expired = _ctx(now=real_now - timedelta(seconds=61))  # the TTL ended a second ago
    plan = _plan(expired, ttl_s=60)
    asyncio.run(action.execute(plan, expired))
    assert not asyncio.run(action.verify(plan, _ctx())).ok
    assert apps[0].charge() == 200  # the half-open trial call succeeded ...
    assert apps[0].redis.get("stripe:pybreaker:state") == b"closed"  # ... and closed it for all
    assert apps[1].charge() == 200 and loopback.hits["/v1/charges"] == 2


def test_without_ttl_it_stays_open_until_reverted(apps: list[App], redis_url: str) -> None:
    ctx, action = _ctx(), CircuitBreakAction()
    plan = _plan(ctx)
    assert "until reverted" in plan.summary
    asyncio.run(action.execute(plan, ctx))
    opened_at = int(apps[0].redis.get("stripe:pybreaker:opened_at") or 0)
    assert opened_at > datetime.now(UTC).timestamp() + 9 * 365 * 86400
    with pytest.raises(pybreaker.CircuitBreakerError):
        apps[1].charge()


def test_policy_limit_caps_the_ttl_and_refuses_a_longer_one(apps: list[App], redis_url: str) -> None:
    ctx = _ctx(limits={"max_ttl_s": 1800})
    assert _plan(ctx).state["ttl_s"] == 1800
    with pytest.raises(PermanentError) as err:
        _plan(ctx, ttl_s=3600)
    assert str(err.value) == "ttl_s 3600 exceeds the policy limit max_ttl_s=1800"
    assert err.value.code == "limit_exceeded"


def test_dry_run_reads_only(apps: list[App], redis_url: str) -> None:
    ctx, action = _ctx(), CircuitBreakAction()
    plan = _plan(ctx, ttl_s=60)
    outcome = asyncio.run(action.dry_run(plan, ctx))
    assert outcome.ok and outcome.detail == "would force-open breaker 'stripe' (closed -> open, for 60s)"
    assert apps[0].redis.get("stripe:pybreaker:state") == b"closed"
    assert apps[0].charge() == 200


def test_unknown_breaker_is_refused_unless_create(redis_server: RedisServer, redis_url: str,
                                                  stripe: str) -> None:
    ctx = _ctx(namespace="payments")
    with pytest.raises(PermanentError) as err:
        _plan(ctx)
    assert str(err.value) == (
        f"breaker 'stripe' not found in Redis at 127.0.0.1:{redis_server.port}: key "
        "payments:pybreaker:state does not exist (does the app use CircuitRedisStorage with "
        "namespace='payments'? pass create=true to create it anyway)")
    assert err.value.code == "breaker_unknown"
    plan = _plan(ctx, create=True, ttl_s=60)
    asyncio.run(CircuitBreakAction().execute(plan, ctx))
    app = App(redis_url, stripe, namespace="payments")
    with pytest.raises(pybreaker.CircuitBreakerError):
        app.charge()  # an instance starting later sees it open
    app.redis.close()


def test_redis_down_is_temporary_and_names_the_address_not_the_password(
        redis_server: RedisServer, redis_url: str) -> None:
    redis_server.stop()
    try:
        with pytest.raises(TemporaryError) as err:
            _plan(_ctx())
    finally:
        redis_server.start()
    assert str(err.value) == f"Redis at 127.0.0.1:{redis_server.port} is unreachable: connection refused"
    assert err.value.code == "redis_unavailable"


def test_wrong_password_is_permanent_and_never_shown(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, f"redis://:hunter2-wrong@127.0.0.1:{redis_server.port}/0")
    with pytest.raises(PermanentError) as err:
        _plan(_ctx())
    assert str(err.value) == (f"Redis at 127.0.0.1:{redis_server.port} refused the credentials: "
                              "invalid username-password pair or user is disabled.")
    assert err.value.code == "redis_auth"
    assert "hunter2" not in repr(err.value) and redis_server.password not in str(err.value)


def test_missing_password_is_permanent(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, f"redis://127.0.0.1:{redis_server.port}/0")
    with pytest.raises(PermanentError) as err:
        _plan(_ctx())
    assert err.value.code == "redis_auth"
