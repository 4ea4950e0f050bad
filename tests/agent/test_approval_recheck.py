"""The executor checks approval records, not the state column, on the real PostgreSQL ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.execution.executor import Executor
from agent.ledger.postgres import PostgresLedger
from agent.model import DecisionStep, Proposal, TargetSpec, Verdict
from agent.model.config import Config
from agent.model.identity import Identity
from tests.plugins.slow_marker import SlowMarker

T0 = datetime.now(UTC).replace(microsecond=0)
SRE = Identity("kubernetes", "alice", "alice", ("sre",))


@dataclass
class Setup:
    tmp: Path
    dsn: str
    ledger: PostgresLedger
    marker: Path

    def executor(self, policy: dict[str, object]) -> Executor:
        path = self.tmp / "policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        tree = self.tmp / "tree.yaml"
        tree.write_text(yaml.safe_dump({"branches": [{"name": "e", "title": "e", "any": ["error_spike"],
                                                      "propose": [{"action": "slow-marker"}]}]}))
        registry = Registry()
        registry.add_action(SlowMarker())
        app = build_app(Config(targets=[TargetSpec(name="checkout")], tree=tree, policy=path), registry)
        return Executor(app, self.ledger, "hemostat")

    def propose(self, approvals: int = 1) -> str:
        proposal = Proposal(id="p-forge1", target="checkout", action="slow-marker", subject="checkout",
                            params={"file": str(self.marker)}, path=(DecisionStep("e", "errors"),),
                            reason="mark", created_at=T0)
        self.ledger.add_proposal(proposal, Verdict("needs_approval", "propose", ("human",), approvals),
                                 T0, T0 + timedelta(hours=1))
        return proposal.id


PROPOSE = {"mode": "propose", "actions": {"slow-marker": {"approvals": 1}}}


def open_setup(dsn: str, tmp_path: Path) -> Iterator[Setup]:
    ledger = PostgresLedger(dsn)
    yield Setup(tmp_path, dsn, ledger, tmp_path / "marker")
    ledger.close()


@pytest.fixture
def setup(pg_db: str, tmp_path: Path) -> Iterator[Setup]:
    yield from open_setup(pg_db, tmp_path)


def _events(setup: Setup, pid: str) -> list[str]:
    return [e.type for e in setup.ledger.events(proposal_id=pid)]


def test_a_direct_update_to_approved_executes_nothing_and_is_recorded_as_tampering(setup: Setup) -> None:
    pid = setup.propose()
    with psycopg.connect(setup.dsn, autocommit=True) as conn:  # anyone holding the ledger DSN
        conn.execute("UPDATE proposals SET state = 'approved' WHERE id = %s", (pid,))
    assert asyncio.run(setup.executor(PROPOSE).run_once()) == []
    assert not setup.marker.exists()
    record = setup.ledger.proposal(pid)
    assert record.state == "rejected"
    [tamper] = [e for e in setup.ledger.events(proposal_id=pid) if e.type == "tampering"]
    assert tamper.data["approvals"] == []
    assert "slow-marker needs 1 approval from distinct people; the ledger holds 0" in tamper.data["reason"]
    assert "execution_started" not in _events(setup, pid)


def test_an_inserted_approval_from_an_untrusted_source_does_not_count(setup: Setup) -> None:
    pid = setup.propose()
    setup.ledger.approve(pid, "mallory", T0)  # an asserted name, written straight to the ledger
    policy = {**PROPOSE, "approvers": {"sources": ["kubernetes"]}}
    assert asyncio.run(setup.executor(policy).run_once()) == []
    assert not setup.marker.exists()
    rejected = [e for e in setup.ledger.events(proposal_id=pid) if e.type == "proposal_rejected"][0]
    assert "mallory (asserted) does not count: policy.yaml: approvers.sources does not include " \
           "'asserted'" in rejected.data["reason"]
    assert "tampering" not in _events(setup, pid)  # the records matched; the policy refused them


def test_approvals_outside_the_policy_s_groups_do_not_count(setup: Setup) -> None:
    pid = setup.propose()
    setup.ledger.approve(pid, Identity("kubernetes", "bob", "bob", ("developers",)), T0)
    policy = {**PROPOSE, "approvers": {"groups": ["sre"]}}
    assert asyncio.run(setup.executor(policy).run_once()) == []
    assert setup.ledger.proposal(pid).state == "rejected" and not setup.marker.exists()


def test_enough_admissible_approvals_run_once(setup: Setup) -> None:
    pid = setup.propose(approvals=2)
    setup.ledger.approve(pid, SRE, T0)
    setup.ledger.approve(pid, Identity("postgres", "carol", "carol", ("sre",)), T0)
    policy = {"mode": "propose", "approvers": {"groups": ["sre"]},
              "actions": {"slow-marker": {"approvals": 2}}}
    assert asyncio.run(setup.executor(policy).run_once()) == [pid]
    assert setup.marker.read_text().split() == ["start", "done"]


def test_a_policy_raised_to_two_approvals_after_one_was_given_stops_the_run(setup: Setup) -> None:
    pid = setup.propose(approvals=1)
    setup.ledger.approve(pid, SRE, T0)
    policy = {"mode": "propose", "actions": {"slow-marker": {"approvals": 2}}}
    assert asyncio.run(setup.executor(policy).run_once()) == []
    assert setup.ledger.proposal(pid).state == "rejected" and not setup.marker.exists()
