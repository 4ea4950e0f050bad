"""kill-queries against a real PostgreSQL: only the planned pids die, and only while they still do
what the plan saw; superusers, excluded roles and Hemostat's own sessions survive; dry-run kills
nothing; terminate only when the policy allows it; verify re-probes with the real pg-activity probe.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from actions.kill_queries import KillQueriesAction
from agent.model import (
    Finding,
    Observation,
    PermanentError,
    Plan,
    Proposal,
    TargetSpec,
)
from agent.model.context import ActionContext, ProbeContext
from probes.pg_activity import PgActivityProbe
from tests.probes.test_pg_activity import APP_PW, app_dsn, db, target
from tests.services.postgres import PgServer, Sessions

__all__ = ["db"]  # the fixture, shared with the probe's tests
ACTION = KillQueriesAction()


async def reprobe(spec: TargetSpec, name: str) -> list[Finding]:
    probe = PgActivityProbe()
    now = datetime.now(UTC)
    data = await probe.collect(spec, ProbeContext())
    return probe.analyze(Observation(name, spec.name, now, data), spec, now)


def ctx_for(spec: TargetSpec, **limits: Any) -> ActionContext:
    return ActionContext(target=spec, limits=limits, reprobe=reprobe)


def proposal(db: str, reason: str, **params: Any) -> Proposal:
    return Proposal(id="p-kill01", target="checkout", action="kill-queries", subject=f"postgres:{db}",
                    params={"reason": reason, "grace_s": 0.3, **params}, path=(),
                    reason=f"{reason} in {db}", created_at=datetime.now(UTC))


def plan(spec: TargetSpec, db: str, reason: str, limits: dict[str, Any] | None = None,
         **params: Any) -> Plan:
    return asyncio.run(ACTION.plan(proposal(db, reason, **params), ctx_for(spec, **(limits or {}))))


def run(step: str, the_plan: Plan, spec: TargetSpec, **limits: Any) -> Any:
    return asyncio.run(getattr(ACTION, step)(the_plan, ctx_for(spec, **limits)))


@pytest.fixture
def spec(monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str) -> TargetSpec:
    """The target as Hemostat sees it: a superuser DSN, with `batch` never to be killed."""
    pg_server.create_role("batch", "Batch-Pa55-1")
    return target(monkeypatch, pg_server.dsn(dbname=db), thresholds={"long_query_seconds": 1.0},
                  exclude_roles=["batch"])


def test_only_long_queries_of_killable_roles_are_cancelled(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions) -> None:
    victim = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30), 'tok-9f'")
    admin = pg_sessions.run(pg_server.dsn(dbname=db), "SELECT pg_sleep(30)")
    batch = pg_sessions.run(pg_server.dsn(user="batch", password="Batch-Pa55-1", dbname=db),
                            "SELECT pg_sleep(30)")
    ours = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)", app="hemostat")
    for pid in (victim, admin, batch, ours):
        pg_sessions.older_than(pid, 1.1)
    young = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)")
    the_plan = plan(spec, db, "long_running_queries")
    assert [s["pid"] for s in the_plan.state["sessions"]] == [victim]
    assert the_plan.touches == (f"postgres:{db}", f"pid:{victim}") and not the_plan.reversible
    assert "SELECT pg_sleep(?), ?" in the_plan.changes[0].before and "tok-9f" not in str(the_plan.to_json())
    why = {s["pid"]: s["why"] for s in the_plan.state["skipped"]}
    assert why == {admin: "superuser", batch: "excluded role (exclude_roles)", ours: "Hemostat's own session"}
    outcome = run("execute", the_plan, spec)
    assert outcome.ok and outcome.facts["cancelled"] == [victim], outcome.detail
    pg_sessions.wait_until(lambda: victim in pg_sessions.errors)
    assert isinstance(pg_sessions.errors[victim], psycopg.errors.QueryCanceled)
    assert all(pg_sessions.alive(pid) and pid not in pg_sessions.errors
               for pid in (admin, batch, ours, young))
    again = run("execute", the_plan, spec)
    assert again.ok and again.facts["cancelled"] == [] and again.facts["already_gone"] == [victim]


def test_lock_contention_kills_the_root_blocker_and_verify_sees_it_cleared(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions) -> None:
    dsn = app_dsn(pg_server, db)
    root = pg_sessions.idle_in_transaction(dsn, "UPDATE accounts SET balance = 0 WHERE id = 1")
    waiters = [pg_sessions.run(dsn, "UPDATE accounts SET balance = 1 WHERE id = 1") for _ in range(2)]
    for pid in waiters:
        pg_sessions.older_than(pid, 0.6)
    the_plan = plan(spec, db, "lock_contention", {"allow_terminate": True})
    assert [s["pid"] for s in the_plan.state["sessions"]] == [root]
    assert the_plan.state["sessions"][0]["blocks"] == 2 and "terminate survivors" in the_plan.summary
    outcome = run("execute", the_plan, spec, allow_terminate=True)
    assert outcome.ok and outcome.facts["terminated"] == [root], outcome.detail
    assert not pg_sessions.alive(root)
    pg_sessions.wait_until(lambda: not any(pg_sessions.alive(p) and (pg_sessions.state(p) or {})
                                           .get("state") == "active" for p in waiters))
    assert all(pid not in pg_sessions.errors for pid in waiters)  # the victims went through
    verified = run("verify", the_plan, spec)
    assert verified.ok, verified.detail


def test_idle_transaction_survives_cancel_unless_terminate_is_allowed(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions) -> None:
    pid = pg_sessions.idle_in_transaction(app_dsn(pg_server, db), "SELECT 1")
    pg_sessions.older_than(pid, 0.6, "state_s")
    the_plan = plan(spec, db, "idle_in_transaction")
    assert "no terminate" in the_plan.summary
    held = run("execute", the_plan, spec)
    assert not held.ok and held.facts["survivors"] == [pid] and "terminate not allowed" in held.detail
    assert not run("verify", the_plan, spec).ok
    done = run("execute", the_plan, spec, allow_terminate=True)
    assert done.ok and done.facts["terminated"] == [pid] and not pg_sessions.alive(pid)


def test_a_reused_pid_is_never_signalled(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions) -> None:
    pid = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)")
    pg_sessions.older_than(pid, 1.1)
    the_plan = plan(spec, db, "long_running_queries")
    the_plan.state["sessions"][0]["backend_start"] = "2001-01-01 00:00:00+00"  # another backend's
    outcome = run("execute", the_plan, spec, allow_terminate=True)
    assert outcome.ok and outcome.facts["already_gone"] == [pid] and outcome.facts["cancelled"] == []
    assert pg_sessions.alive(pid) and pid not in pg_sessions.errors


def test_max_sessions_refuses_or_takes_the_worst(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions) -> None:
    pids = []
    for _ in range(3):
        pids.append(pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)"))
        pg_sessions.older_than(pids[-1], 0.1)
    pg_sessions.older_than(pids[-1], 1.1)
    with pytest.raises(PermanentError, match="max_sessions=2; nothing planned") as caught:
        plan(spec, db, "long_running_queries", {"max_sessions": 2})
    assert caught.value.code == "limit_exceeded"
    worst = plan(spec, db, "long_running_queries", {"max_sessions": 2}, take_worst=True)
    assert [s["pid"] for s in worst.state["sessions"]] == pids[:2]
    assert "the 2 worst of 3 matching" in worst.summary and worst.blast_radius["matched"] == 3


def test_dry_run_kills_nothing_and_names_missing_privileges(
        pg_server: PgServer, db: str, spec: TargetSpec, pg_sessions: Sessions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pid = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)")
    pg_sessions.older_than(pid, 1.1)
    the_plan = plan(spec, db, "long_running_queries")
    dry = run("dry_run", the_plan, spec)
    assert dry.ok and dry.facts["would_signal"] == [pid] and "nothing was killed" in dry.detail
    monitor = pg_server.create_role("watcher", "Watch-Pa55-1", "pg_monitor", dbname=db)
    weak = target(monkeypatch, monitor, thresholds={"long_query_seconds": 1.0})
    denied = run("dry_run", the_plan, weak)
    assert not denied.ok and denied.facts["not_permitted_users"] == ["app"]
    refused = run("execute", the_plan, weak)
    assert not refused.ok and refused.facts["refused"] == [pid] and "pg_signal_backend" in refused.detail
    assert pg_sessions.alive(pid) and pid not in pg_sessions.errors


def test_revert_is_refused_and_bad_params_are_named(db: str, spec: TargetSpec) -> None:
    empty = plan(spec, db, "idle_in_transaction")
    assert empty.changes == () and "nothing to do" in empty.summary
    assert run("execute", empty, spec).ok
    reverted = run("revert", empty, spec)
    assert not reverted.ok and reverted.detail == "killed queries cannot be restored"
    with pytest.raises(PermanentError, match=r"params\.reason must be one of"):
        plan(spec, db, "everything")
    assert ACTION.unavailable_reason(spec, "deployment/x") == "deployment/x is not postgres:<database>"
    assert ACTION.unavailable_reason(TargetSpec(name="x"), "postgres:db") is not None


def test_wrong_password_is_permanent_and_never_shown(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str) -> None:
    secret = "Wr0ng-Pa55word-k1"
    bad = target(monkeypatch, f"postgresql://app:{secret}@{pg_server.host}:{pg_server.port}/{db}")
    with pytest.raises(PermanentError) as caught:
        plan(bad, db, "long_running_queries")
    assert caught.value.code == "pg_auth_failed" and secret not in str(caught.value)
    assert APP_PW not in str(caught.value)
