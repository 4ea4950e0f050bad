"""The PostgreSQL ledger with split roles, as docs/install.md sets it up: the owner migrates,
the daemon's role runs Hemostat but cannot alter, disable or drop the triggers, nor rewrite the
timeline."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from agent.ledger import LedgerError
from agent.ledger.postgres import PostgresLedger
from tests.ledger.conftest import Roles, make_roles
from tests.services.postgres import PgServer

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture
def daemon_ledger(split: Roles) -> Iterator[PostgresLedger]:
    ledger = PostgresLedger(split.daemon_dsn)
    ledger.append("note", "hemostat", T0, data={"text": "kept"})
    yield ledger
    ledger.close()


def test_migrate_reports_the_daemon_grants(split: Roles) -> None:
    assert f"{split.daemon}: SELECT, INSERT on public.events" in split.migrated
    assert f"{split.daemon}: SELECT on public.ledger_anchors" in split.migrated
    assert f"{split.daemon}: SELECT, INSERT, UPDATE on public.proposals" in split.migrated
    assert f"{split.approvers}: EXECUTE on the approval functions, nothing else" in split.migrated


def test_the_daemon_role_runs_the_ledger(daemon_ledger: PostgresLedger) -> None:
    from tests.ledger.test_ledger_contract import _proposal, _verdict

    pid = f"p-{secrets.token_hex(3)}"
    daemon_ledger.add_proposal(_proposal(pid), _verdict(), T0, None)
    daemon_ledger.approve(pid, "alice", T0)
    assert daemon_ledger.claim_execution(pid, "hemostat", T0, {"summary": "x"}) is not None
    daemon_ledger.transition(pid, "succeeded", "hemostat", T0)
    assert daemon_ledger.try_lead("daemon-a")
    daemon_ledger.beat("executor", "daemon-a", T0)
    daemon_ledger.beat("executor", "daemon-a", T0)  # an upsert: INSERT and UPDATE
    assert daemon_ledger.verify_chain().ok


TAMPERS = [
    "ALTER TABLE events DISABLE TRIGGER events_no_change",
    "ALTER TABLE events DISABLE TRIGGER USER",
    "ALTER TABLE events DISABLE TRIGGER events_chain",
    "DROP TRIGGER events_no_change ON events",
    "DROP TRIGGER events_no_truncate ON events",
    "DROP TRIGGER events_chain ON events",
    "CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN OLD; END $$",
    "ALTER TABLE events OWNER TO CURRENT_USER",
    "ALTER TABLE events RENAME TO old_events",
    "DROP TABLE events",
    "UPDATE events SET actor = 'mallory'",
    "DELETE FROM events",
    "TRUNCATE events",
    "INSERT INTO ledger_anchors (through_seq, hash, at, pruned) VALUES (99, 'x', now(), 1)",
    "SET session_replication_role = replica",
    "CREATE TABLE events_copy (LIKE events)",
    "UPDATE approvals SET actor = 'mallory'",
    "SELECT hemostat_approve('p-00000000')",  # approving is for approvers' own logins
]


@pytest.mark.parametrize("statement", TAMPERS)
def test_the_daemon_role_cannot_tamper(daemon_ledger: PostgresLedger, split: Roles, statement: str) -> None:
    before = daemon_ledger.events()
    with psycopg.connect(split.daemon_dsn, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)  # type: ignore[arg-type]
    assert daemon_ledger.events() == before
    assert daemon_ledger.verify_chain().ok


def test_a_hash_the_daemon_supplies_is_ignored(daemon_ledger: PostgresLedger, split: Roles) -> None:
    with psycopg.connect(split.daemon_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(0)")  # no lock needed for a lone writer
        conn.execute("INSERT INTO events (at, type, actor, data, hash) "
                     "VALUES (now(), 'note', 'mallory', '{}', 'forged')")
    result = daemon_ledger.verify_chain()
    assert result.ok and result.head_hash != "forged"


def test_the_owner_is_refused_as_the_daemon_role(split: Roles) -> None:
    ledger = PostgresLedger(split.owner_dsn)
    with pytest.raises(LedgerError, match="could disable the ledger's triggers"):
        ledger.grant(split.owner, [])
    with pytest.raises(LedgerError, match="does not exist"):
        ledger.grant("nobody_here", [])
    ledger.close()


def test_the_daemon_role_cannot_migrate_and_says_who_can(pg_server: PgServer, pg_db: str) -> None:
    roles = make_roles(pg_server, pg_db.split("dbname=")[1].split()[0])
    owner = PostgresLedger(roles.owner_dsn)
    owner.grant(roles.daemon, [])
    owner.close()
    with psycopg.connect(roles.owner_dsn, autocommit=True) as owner:  # as if this Hemostat were newer
        owner.execute("DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    with pytest.raises(LedgerError, match="hemostat ledger migrate") as caught:
        PostgresLedger(roles.daemon_dsn)
    assert caught.value.code == "ledger_needs_migration"
