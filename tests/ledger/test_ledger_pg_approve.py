"""Approving through the shared PostgreSQL ledger: approvers' login roles can only call the
approval functions, and what is recorded is who PostgreSQL authenticated (session_user), with
its role memberships as groups, whatever the caller types, sets or shadows."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from agent.execution.identity_pg import LoginApprovalError, approve_as_login, reject_as_login
from agent.ledger.postgres import PostgresLedger
from policies.model import bundled_policy_path
from tests.ledger.conftest import Roles
from tests.ledger.test_ledger_contract import T0, _proposal, _verdict
from tests.services.postgres import PgServer


@pytest.fixture
def approver(pg_server: PgServer, split: Roles) -> Iterator[tuple[str, str]]:
    """A login role in the approvers group (and in an `sre` group role): (name, DSN)."""
    tag = secrets.token_hex(3)
    pg_server.create_role(f"sre_{tag}", "unused", dbname=split.db)
    name = f"alice_{tag}"
    yield name, pg_server.create_role(name, "alice-pw", split.approvers, f"sre_{tag}", dbname=split.db)


def _propose(split: Roles, approvals: int = 1, proposer: str = "hemostat") -> tuple[PostgresLedger, str]:
    ledger = PostgresLedger(split.daemon_dsn)
    pid = f"p-{secrets.token_hex(4)}"
    ledger.add_proposal(_proposal(pid, proposer=proposer), _verdict(approvals=approvals), T0, None)
    return ledger, pid


def test_an_approver_approves_as_their_login_with_their_groups(split: Roles, approver: tuple[str, str]) -> None:
    name, dsn = approver
    ledger, pid = _propose(split)
    answer = approve_as_login(dsn, pid[:6])
    assert answer["state"] == "approved" and answer["identity"]["name"] == name
    record = ledger.proposal(pid)
    assert record.state == "approved"
    (approval,) = record.approvals
    assert (approval.identity.source, approval.identity.subject) == ("postgres", name)
    assert split.approvers in approval.identity.groups and f"sre_{name[6:]}" in approval.identity.groups
    events = ledger.events(proposal_id=pid)
    assert [(e.type, e.actor) for e in events][-2:] == [("approval", name), ("proposal_approved", name)]
    assert ledger.verify_chain().ok
    ledger.close()


def test_a_refusal_by_the_caller_s_check_records_nothing(split: Roles, approver: tuple[str, str]) -> None:
    _, dsn = approver
    ledger, pid = _propose(split)
    seen = []

    def policy(answer: dict[str, object]) -> str:
        seen.append(answer)
        return "policy.yaml: actions.rollback.approvers.sources does not include 'postgres'"

    with pytest.raises(LoginApprovalError, match="does not include 'postgres'"):
        approve_as_login(dsn, pid, policy)
    assert seen[0]["action"] == "rollback" and seen[0]["proposers"] == ["hemostat"]
    assert ledger.proposal(pid).state == "proposed"
    assert [e.type for e in ledger.events(proposal_id=pid)] == ["proposal"]
    ledger.close()


def test_set_role_does_not_change_who_approved(split: Roles, approver: tuple[str, str]) -> None:
    name, dsn = approver
    ledger, pid = _propose(split, approvals=2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.approvers)))
        conn.execute("SELECT hemostat_approve(%s)", (pid,))
        with pytest.raises(psycopg.errors.RaiseException, match="already approved"):
            conn.execute("SELECT hemostat_approve(%s)", (pid,))
    record = ledger.proposal(pid)
    assert record.approvers == (name,) and record.state == "proposed"
    ledger.close()


def test_a_temporary_table_cannot_stand_in_for_the_ledger(split: Roles, approver: tuple[str, str]) -> None:
    _, dsn = approver
    ledger, pid = _propose(split)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE proposals (LIKE pg_catalog.pg_class)")
        conn.execute("CREATE TEMP TABLE approvals (proposal_id text)")
        conn.execute("SELECT hemostat_approve(%s)", (pid,))
    assert ledger.proposal(pid).state == "approved"
    ledger.close()


APPROVER_TAMPERS = [
    "SELECT * FROM proposals",
    "UPDATE proposals SET state = 'approved'",
    "INSERT INTO approvals (proposal_id, actor, at, subject) VALUES ('p-x', 'bob', now(), 'bob')",
    "INSERT INTO events (at, type, actor, data) VALUES (now(), 'approval', 'bob', '{}')",
    "SELECT hemostat_login_identity()",
    "SELECT hemostat_proposal_for_update('p-x')",
    "ALTER TABLE events DISABLE TRIGGER USER",
]


@pytest.mark.parametrize("statement", APPROVER_TAMPERS)
def test_an_approver_can_do_nothing_else(split: Roles, approver: tuple[str, str], statement: str) -> None:
    with psycopg.connect(approver[1], autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)  # type: ignore[arg-type]


def test_the_proposer_cannot_approve_their_own(split: Roles, approver: tuple[str, str]) -> None:
    name, dsn = approver
    ledger, pid = _propose(split, proposer=name.upper())
    with pytest.raises(LoginApprovalError, match="separation of duties"):
        approve_as_login(dsn, pid)
    assert ledger.proposal(pid).state == "proposed"
    ledger.close()


def test_a_role_outside_the_approvers_group_is_refused(pg_server: PgServer, split: Roles) -> None:
    ledger, pid = _propose(split)
    dsn = pg_server.create_role(f"mallory_{secrets.token_hex(3)}", "m-pw", dbname=split.db)
    with pytest.raises(LoginApprovalError, match="needs membership of an approver role") as caught:
        approve_as_login(dsn, pid)
    assert "m-pw" not in str(caught.value)
    assert ledger.proposal(pid).state == "proposed"
    ledger.close()


def test_an_approver_rejects_with_a_reason(split: Roles, approver: tuple[str, str]) -> None:
    name, dsn = approver
    ledger, pid = _propose(split)
    with pytest.raises(LoginApprovalError, match="needs a reason"):
        reject_as_login(dsn, pid, "  ")
    assert reject_as_login(dsn, pid, "wrong deploy")["state"] == "rejected"
    rejected = ledger.events(proposal_id=pid)[-1]
    assert (rejected.type, rejected.actor, rejected.data["reason"]) == ("proposal_rejected", name, "wrong deploy")
    ledger.close()


def _cli(dsn: str, tmp_path: Path, *args: str, groups: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `hemostat` as an approver on a laptop: the ledger DSN is their own login role."""
    policy = (bundled_policy_path("default")).read_text()
    if groups is not None:
        policy = policy.replace("approvers: {sources: [kubernetes, postgres, slack]}",
                                f"approvers: {{sources: [postgres], groups: [{', '.join(groups)}]}}")
    (tmp_path / "policy.yaml").write_text(policy)
    config = tmp_path / "hemostat.yaml"
    config.write_text("store: {backend: postgres, dsn: {env: APPROVER_DSN}}\npolicy: policy.yaml\n")
    env = {k: v for k, v in os.environ.items() if k != "HEMOSTAT_USER"}
    env.update(APPROVER_DSN=dsn, HEMOSTAT_CONFIG=str(config))
    return subprocess.run([str(Path(sys.executable).parent / "hemostat"), *args], env=env,
                          capture_output=True, text=True)


def test_hemostat_approve_on_a_postgres_ledger_approves_as_the_login(split: Roles, approver: tuple[str, str],
                                                                    tmp_path: Path) -> None:
    name, dsn = approver
    ledger, pid = _propose(split)
    done = _cli(dsn, tmp_path, "approve", pid)
    assert done.returncode == 0, done.stderr
    assert f"approved by {name} (postgres) (1/1); now approved" in done.stdout
    assert ledger.proposal(pid).approvals[0].identity.source == "postgres"
    assert "alice-pw" not in done.stdout + done.stderr
    ledger.close()


def test_the_policy_s_groups_are_role_memberships(split: Roles, approver: tuple[str, str], tmp_path: Path) -> None:
    name, dsn = approver
    ledger, pid = _propose(split)
    refused = _cli(dsn, tmp_path, "approve", pid, groups=["dba_only"])
    assert refused.returncode == 1 and "is in none of" in refused.stderr and "dba_only" in refused.stderr
    assert [e.type for e in ledger.events(proposal_id=pid)] == ["proposal"]
    admitted = _cli(dsn, tmp_path, "approve", pid, groups=[f"sre_{name[6:]}"])
    assert admitted.returncode == 0, admitted.stderr
    assert ledger.proposal(pid).state == "approved"
    ledger.close()


def test_hemostat_reject_on_a_postgres_ledger_rejects_as_the_login(split: Roles, approver: tuple[str, str],
                                                                  tmp_path: Path) -> None:
    name, dsn = approver
    ledger, pid = _propose(split)
    done = _cli(dsn, tmp_path, "reject", pid, "--reason", "wrong deploy")
    assert done.returncode == 0, done.stderr
    assert f"rejected by {name} (postgres)" in done.stdout
    assert ledger.proposal(pid).state == "rejected"
    ledger.close()
