"""pg-activity against a real PostgreSQL: lock chains, long queries, idle transactions, saturation,
least-privilege roles, and the errors of a bad night (wrong password, server down, statement
timeout), none of which may show the password.

Thresholds are a fraction of a second, so the sessions only need to live about a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

import probes.pg_activity as pg_activity
from agent.model import (
    Finding,
    Observation,
    PermanentError,
    PostgresSpec,
    SecretRef,
    TargetSpec,
    TemporaryError,
    Thresholds,
)
from agent.model.context import BreakerBoard, CircuitOpenError, ProbeContext
from agent.model.redact import mask_query
from probes.pg_activity import PgActivityProbe
from tests.services.postgres import PgServer, Sessions

ENV = "HEMOSTAT_TEST_PG_ACTIVITY_DSN"
APP_PW = "App-Pa55word-7f3e"
FAST = {"long_query_seconds": 0.5, "idle_in_transaction_seconds": 0.5, "lock_wait_seconds": 0.5}


@pytest.fixture
def db(pg_db: str, pg_server: PgServer) -> Iterator[str]:
    """A database with an `accounts` table the non-superuser role `app` may write."""
    pg_server.create_role("app", APP_PW)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int, owner text)")
        conn.execute("INSERT INTO accounts VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, 'c')")
        conn.execute("GRANT ALL ON accounts TO PUBLIC")
    yield str(conninfo_to_dict(pg_db)["dbname"])


def app_dsn(server: PgServer, db: str, user: str = "app", password: str = APP_PW) -> str:
    return server.dsn(user=user, password=password, dbname=db)


def target(monkeypatch: pytest.MonkeyPatch, dsn: str, thresholds: dict[str, float] | None = None,
           **spec: Any) -> TargetSpec:
    monkeypatch.setenv(ENV, dsn)
    return TargetSpec(name="checkout", postgres=PostgresSpec(dsn=SecretRef(env=ENV), **spec),
                      thresholds=Thresholds(**{**FAST, **(thresholds or {})}))


def diagnose(spec: TargetSpec, ctx: ProbeContext | None = None) -> tuple[Observation, list[Finding]]:
    probe, now = PgActivityProbe(), datetime.now(UTC)
    obs = Observation(probe.name, spec.name, now, asyncio.run(probe.collect(spec, ctx or ProbeContext())))
    return obs, probe.analyze(obs, spec, now)


def of_kind(findings: list[Finding], kind: str) -> Finding:
    [found] = [f for f in findings if f.kind == kind]
    return found


def test_lock_chain_is_followed_to_the_root_blocker(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    dsn = app_dsn(pg_server, db)
    root = pg_sessions.idle_in_transaction(dsn, "UPDATE accounts SET owner = 'alice-secret' WHERE id = 1")
    mid = pg_sessions.run(dsn, "BEGIN; UPDATE accounts SET balance = 5 WHERE id = 2; "
                               "UPDATE accounts SET balance = 6 WHERE id = 1; COMMIT")
    pg_sessions.wait_until(lambda: (pg_sessions.state(mid) or {}).get("wait") == "Lock")
    tail = pg_sessions.run(dsn, "UPDATE accounts SET balance = 7 WHERE id = 2")
    pg_sessions.older_than(tail, 0.6)
    obs, findings = diagnose(target(monkeypatch, pg_server.admin_dsn))
    lock = of_kind(findings, "lock_contention")
    assert lock.subject == f"postgres:{db}" and lock.severity.label() == "SEV-2"
    assert lock.facts["root_pids"] == [root] and sorted(lock.facts["pids"]) == sorted([mid, tail])
    assert lock.facts["root_blockers"][0]["blocks"] == 2
    assert f"chain: {tail} waits for {mid} waits for {root}" in lock.evidence
    assert any("owner = ? WHERE id = ?" in line for line in lock.evidence)
    assert "alice-secret" not in json.dumps(obs.to_json()) + json.dumps([f.to_json() for f in findings])
    assert of_kind(findings, "idle_in_transaction").facts["pids"] == [root]
    assert not [f for f in findings if f.kind == "long_running_queries"]  # waiters are victims
    longest = max(s["wait_s"] for s in lock.facts["waiting"])
    assert lock.onset == obs.collected_at - timedelta(seconds=longest)  # the longest wait's start
    assert lock.onset_from == "the longest lock wait's start"


def test_long_running_query_is_found_masked_and_hemostat_is_not(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    dsn = app_dsn(pg_server, db)
    slow = pg_sessions.run(dsn, "SELECT pg_sleep(30), 'card-4242' AS card, 31337 AS n")
    ours = pg_sessions.run(dsn, "SELECT pg_sleep(30)", app="hemostat")
    pg_sessions.older_than(slow, 0.6)
    pg_sessions.older_than(ours, 0.6)
    obs, findings = diagnose(target(monkeypatch, pg_server.admin_dsn))
    long = of_kind(findings, "long_running_queries")
    assert long.facts["pids"] == [slow] and long.facts["users"] == ["app"]
    assert long.facts["longest_s"] >= 0.6 and long.subject == f"postgres:{db}"
    assert "SELECT pg_sleep(?), ? AS card, ? AS n" in long.evidence[0]
    text = json.dumps(obs.to_json()) + json.dumps(long.to_json())
    assert "card-4242" not in text and "31337" not in text
    later = target(monkeypatch, pg_server.admin_dsn, {"long_query_seconds": 60})
    assert not [f for f in PgActivityProbe().analyze(obs, later, obs.collected_at)
                if f.kind == "long_running_queries"]


def test_idle_transaction_is_reported_with_how_long(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    pid = pg_sessions.idle_in_transaction(app_dsn(pg_server, db), "SELECT balance FROM accounts")
    pg_sessions.older_than(pid, 0.6, "state_s")
    _, findings = diagnose(target(monkeypatch, pg_server.admin_dsn))
    idle = of_kind(findings, "idle_in_transaction")
    assert idle.facts["pids"] == [pid] and idle.facts["users"] == ["app"]
    assert idle.facts["sessions"][0]["state"] == "idle in transaction"
    assert idle.facts["longest_s"] >= 0.6


def test_sessions_are_counted_before_the_observation_keeps_only_some(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    """The audit: 1,000 idle sessions were reported as 200, the count taken after the cut."""
    monkeypatch.setattr(pg_activity, "MAX_SESSIONS", 2)
    pids = [pg_sessions.idle_in_transaction(app_dsn(pg_server, db), "SELECT 1") for _ in range(5)]
    for pid in pids:
        pg_sessions.older_than(pid, 0.6, "state_s")
    obs, findings = diagnose(target(monkeypatch, pg_server.admin_dsn))
    assert len(obs.data["sessions"]) == 2 and obs.data["sessions_omitted"] == 3
    idle = of_kind(findings, "idle_in_transaction")
    assert idle.summary.startswith(f"5 sessions idle in transaction longer than 0.5s in {db} (2 shown)")
    assert idle.facts["count"] == 5


def test_connections_near_max_are_saturation_with_a_breakdown(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    pg_sessions.fill(app_dsn(pg_server, db), 33)
    obs, findings = diagnose(target(monkeypatch, pg_server.admin_dsn))
    saturated = of_kind(findings, "db_connections_saturated")
    assert obs.data["max_connections"] == 40 and saturated.facts["usable"] == 37
    assert saturated.facts["in_use"] == 34 and saturated.facts["by_user"] == {"app": 33, "postgres": 1}
    assert saturated.facts["by_application"] == {"test": 33, "hemostat": 1}
    assert saturated.severity.label() == "SEV-3" and "34/37" in saturated.summary


def test_no_slot_left_for_the_probe_is_itself_saturation(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    monitor = pg_server.create_role("watcher", "Watch-Pa55-1", "pg_monitor")
    pg_sessions.fill(app_dsn(pg_server, db), 37)
    _, [finding] = diagnose(target(monkeypatch, monitor))
    assert finding.kind == "db_connections_saturated" and finding.severity.label() == "SEV-2"
    assert finding.facts["refused"] is True and "all slots are taken" in finding.summary


def test_pg_monitor_role_sees_other_roles_queries(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    monitor = pg_server.create_role("watcher", "Watch-Pa55-1", "pg_monitor", dbname=db)
    slow = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)")
    pg_sessions.older_than(slow, 0.6)
    obs, findings = diagnose(target(monkeypatch, monitor))
    assert of_kind(findings, "long_running_queries").facts["pids"] == [slow]
    assert obs.data["sees_all"] is True and obs.data["blind_spot"] is None


def test_without_pg_monitor_the_probe_says_what_it_cannot_see(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, pg_sessions: Sessions) -> None:
    outsider = pg_server.create_role("outsider", "Out-Pa55-1", dbname=db)
    slow = pg_sessions.run(app_dsn(pg_server, db), "SELECT pg_sleep(30)")
    mine = pg_sessions.idle_in_transaction(outsider, "SELECT 1")
    pg_sessions.older_than(slow, 0.6)
    pg_sessions.older_than(mine, 0.6, "state_s")
    obs, findings = diagnose(target(monkeypatch, outsider))
    assert not [f for f in findings if f.kind == "long_running_queries"]  # hidden from this role
    assert obs.data["sees_all"] is False and obs.data["hidden"]["users"] == ["app"]
    assert "cannot see 1 session(s) of app" in obs.data["blind_spot"]
    assert "grant pg_monitor to outsider" in obs.data["blind_spot"]
    idle = of_kind(findings, "idle_in_transaction")
    assert idle.facts["pids"] == [mine] and idle.evidence[-1] == obs.data["blind_spot"]


@pytest.mark.parametrize("form", ["keywords", "url"])
def test_wrong_password_is_permanent_and_never_shown(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str, form: str) -> None:
    secret = "Wr0ng-Pa55word-e9"
    dsn = (app_dsn(pg_server, db, password=secret) if form == "keywords"
           else f"postgresql://app:{secret}@{pg_server.host}:{pg_server.port}/{db}")
    with pytest.raises(PermanentError) as caught:
        diagnose(target(monkeypatch, dsn))
    assert caught.value.code == "pg_auth_failed" and "refused role app" in str(caught.value)
    assert secret not in str(caught.value) and caught.value.__cause__ is None


def test_malformed_dsn_is_named_by_reference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PermanentError) as caught:
        diagnose(target(monkeypatch, "host=127.0.0.1 password=S3cret-in-dsn port"))
    assert caught.value.code == "pg_dsn_invalid" and f"env:{ENV}" in str(caught.value)
    assert "S3cret-in-dsn" not in str(caught.value)


def test_server_down_is_temporary_and_trips_the_breaker(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str) -> None:
    spec = target(monkeypatch, app_dsn(pg_server, db))
    ctx = ProbeContext(breakers=BreakerBoard(fail_max=2))
    pg_server.stop()
    try:
        for _ in range(2):
            with pytest.raises(TemporaryError) as caught:
                diagnose(spec, ctx)
            assert caught.value.code == "pg_unreachable" and APP_PW not in str(caught.value)
            assert f"{pg_server.host}:{pg_server.port}" in str(caught.value)
        with pytest.raises(CircuitOpenError, match=f"postgres:{pg_server.host}:{pg_server.port}"):
            diagnose(spec, ctx)
    finally:
        pg_server.start()


def test_statement_timeout_is_temporary(
        monkeypatch: pytest.MonkeyPatch, pg_server: PgServer, db: str) -> None:
    locker = psycopg.connect(pg_server.admin_dsn)  # takes the catalog lock once the probe is in
    real_connect = pg_activity.connect

    async def connect_then_block(spec: PostgresSpec, dsn: str) -> psycopg.AsyncConnection[Any]:
        conn = await real_connect(spec, dsn)
        locker.execute("LOCK TABLE pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE")
        return conn

    monkeypatch.setattr(pg_activity, "connect", connect_then_block)
    try:
        with pytest.raises(TemporaryError) as caught:
            diagnose(target(monkeypatch, app_dsn(pg_server, db), statement_timeout_ms=300))
    finally:
        locker.rollback()
        locker.close()
    assert caught.value.code == "pg_timeout" and "300 ms" in str(caught.value)
    assert APP_PW not in str(caught.value)


@pytest.mark.parametrize(("query", "masked"), [
    ("SELECT * FROM t1 WHERE a = 'x''y' AND b = 42.5e3", "SELECT * FROM t1 WHERE a = ? AND b = ?"),
    ("SELECT $tag$secret body$tag$, $$x$$, $1", "SELECT ?, ?, $1"),
    ("SELECT E'it\\'s', \"Col 9\" FROM t -- token=abc\n", "SELECT ?, \"Col 9\" FROM t"),
    ("INSERT INTO t VALUES ('cut off by track_activity_query_size", "INSERT INTO t VALUES (?"),
    ("/* user=alice pw=x */ UPDATE t2 SET v = .5", "UPDATE t2 SET v = ?"),
])
def test_query_literals_are_masked(query: str, masked: str) -> None:
    assert mask_query(query) == masked


@given(st.text(min_size=1, max_size=40))
def test_no_string_literal_survives_masking(secret: str) -> None:
    quoted = "'" + secret.replace("'", "''") + "'"
    assert mask_query(f"SELECT * FROM t WHERE a = {quoted}") == "SELECT * FROM t WHERE a = ?"
