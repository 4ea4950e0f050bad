"""The executor in-process: expiry, verification, escalation and revert by policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.execution.executor import Executor
from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Proposal, TargetSpec, Verdict
from agent.model.config import Config
from tests.plugins.slow_marker import SlowMarker

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _setup(tmp_path: Path, revert: bool) -> tuple[Executor, SqliteLedger]:
    tree, policy = tmp_path / "tree.yaml", tmp_path / "policy.yaml"
    tree.write_text(yaml.safe_dump({"branches": [{"name": "e", "title": "e", "any": ["error_spike"],
                                                  "propose": [{"action": "slow-marker"}]}]}))
    policy.write_text(yaml.safe_dump({"mode": "auto", "revert_on_failed_verify": revert,
                                      "actions": {"slow-marker": {"auto": True}}}))
    registry = Registry()
    registry.add_action(SlowMarker())
    app = build_app(Config(targets=[TargetSpec(name="checkout")], tree=tree, policy=policy), registry)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    clock = iter(T0 + timedelta(seconds=i) for i in range(1000))
    return Executor(app, ledger, "hemostat", now=lambda: next(clock)), ledger


def _propose(ledger: SqliteLedger, marker: Path, decision: str = "allow", **params: object) -> str:
    proposal = Proposal(id="p-ex0001", target="checkout", action="slow-marker", subject="checkout",
                        params={"file": str(marker), **params}, path=(DecisionStep("e", "errors"),),
                        reason="mark", created_at=T0)
    ledger.add_proposal(proposal, Verdict(decision, "auto", ("test",), 1), T0,  # type: ignore[arg-type]
                        T0 + timedelta(minutes=30))
    return proposal.id


def test_unapproved_proposal_expires_and_never_runs(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    pid = _propose(ledger, tmp_path / "marker", decision="needs_approval")
    executor.now = lambda: T0 + timedelta(minutes=31)
    assert asyncio.run(executor.run_once()) == []
    assert ledger.proposal(pid).state == "expired"
    assert not (tmp_path / "marker").exists()


def test_verified_execution_succeeds_once(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    pid = _propose(ledger, tmp_path / "marker")
    assert asyncio.run(executor.run_once()) == [pid]
    assert asyncio.run(executor.run_once()) == []
    assert ledger.proposal(pid).state == "succeeded"
    assert (tmp_path / "marker").read_text().split() == ["start", "done"]


def test_failed_verification_escalates_and_the_policy_reverts(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=True)
    pid = _propose(ledger, tmp_path / "marker", verify_ok=False)
    asyncio.run(executor.run_once())
    record = ledger.proposal(pid)
    assert record.state == "reverted"
    assert not (tmp_path / "marker").exists()  # the revert removed what execute wrote
    types = [e.type for e in ledger.events(proposal_id=pid)]
    assert types == ["proposal", "execution_started", "execution_finished", "verification",
                     "proposal_failed", "escalated", "proposal_reverted"]
    escalated = next(e for e in ledger.events(proposal_id=pid) if e.type == "escalated")
    assert "findings persist after slow-marker" in escalated.data["reason"]


def test_failed_verification_without_revert_policy_only_escalates(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    pid = _propose(ledger, tmp_path / "marker", verify_ok=False)
    asyncio.run(executor.run_once())
    assert ledger.proposal(pid).state == "failed"
    assert (tmp_path / "marker").exists()
    assert "escalated" in [e.type for e in ledger.events(proposal_id=pid)]


def test_a_twin_approved_during_the_cooldown_is_rejected_at_run_time(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    first = _propose(ledger, tmp_path / "marker")
    twin = Proposal(id="p-ex0002", target="checkout", action="slow-marker", subject="checkout",
                    params={"file": str(tmp_path / "marker")}, path=(DecisionStep("e", "errors"),),
                    reason="mark again", created_at=T0)
    ledger.add_proposal(twin, Verdict("allow", "auto", ("test",)), T0, None)
    assert asyncio.run(executor.run_once()) == [first]
    assert ledger.proposal(first).state == "succeeded"
    rejected = ledger.proposal("p-ex0002")
    assert rejected.state == "rejected"
    reason = next(e for e in ledger.events(proposal_id="p-ex0002") if e.type == "proposal_rejected")
    assert reason.actor == "policy" and reason.data["reason"].startswith("cooldown: slow-marker on checkout")
    assert (tmp_path / "marker").read_text().split() == ["start", "done"]  # ran once



def _claimed_by_a_dead_leader(executor: Executor, ledger: SqliteLedger, marker: Path) -> str:
    """An approved proposal claimed at T0 by a leader that then died mid-execution."""
    pid = _propose(ledger, marker)
    record = ledger.proposal(pid)
    plan = asyncio.run(SlowMarker().plan(record.proposal, executor.context(record)))
    assert ledger.claim_execution(pid, "old-leader", T0, plan.to_json()) is not None
    return pid


def test_a_new_leader_waits_out_the_claim_and_settle_time_and_sees_a_late_write(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    marker = tmp_path / "marker"
    pid = _claimed_by_a_dead_leader(executor, ledger, marker)
    assert executor.reconcilable_at(ledger.proposal(pid)) == T0 + timedelta(seconds=60 + 0.5)
    executor.now = lambda: T0 + timedelta(seconds=1)  # took over 1 s after the claim
    assert asyncio.run(executor.reconcile()) == []
    assert ledger.proposal(pid).state == "executing"
    marker.write_text("start\ndone\n")  # the dead leader's write, still in flight at takeover, lands
    executor.now = lambda: T0 + timedelta(seconds=60.5)
    assert asyncio.run(executor.reconcile()) == [pid]
    record = ledger.proposal(pid)
    assert record.state == "succeeded"
    [settled] = [e for e in ledger.events(proposal_id=pid) if e.type == "proposal_succeeded"]
    assert settled.data == {"from": "executing", "reconciled": True,
                            "detail": "interrupted, but its effect is in place"}
    assert "escalated" not in [e.type for e in ledger.events(proposal_id=pid)]
    assert marker.read_text().split() == ["start", "done"]  # checked, never run again


def test_an_effect_still_missing_after_the_wait_is_failed_and_escalated_not_rerun(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    marker = tmp_path / "marker"
    pid = _claimed_by_a_dead_leader(executor, ledger, marker)
    executor.now = lambda: T0 + timedelta(seconds=61)
    assert asyncio.run(executor.reconcile()) == [pid]
    assert ledger.proposal(pid).state == "failed"
    [escalated] = [e for e in ledger.events(proposal_id=pid) if e.type == "escalated"]
    assert "effect is not in place" in escalated.data["reason"] and "not re-run" in escalated.data["reason"]
    assert not marker.exists()


def _twin(ledger: SqliteLedger, marker: Path, pid: str = "p-ex0002", **params: object) -> str:
    twin = Proposal(id=pid, target="checkout", action="slow-marker", subject="checkout",
                    params={"file": str(marker), **params}, path=(DecisionStep("e", "errors"),),
                    reason="mark again", created_at=T0)
    ledger.add_proposal(twin, Verdict("allow", "auto", ("test",)), T0, None)
    return pid


def test_a_failed_execution_does_not_lock_out_the_retry(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    first = _propose(ledger, tmp_path / "marker", verify_ok=False)  # runs, does not verify
    assert asyncio.run(executor.run_once()) == [first]
    assert ledger.proposal(first).state == "failed"
    retry = _twin(ledger, tmp_path / "marker")
    assert asyncio.run(executor.run_once()) == [retry]
    assert ledger.proposal(retry).state == "succeeded"  # no cooldown from the failed attempt


def test_an_approval_not_executed_within_the_policy_ttl_expires(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    pid = _propose(ledger, tmp_path / "marker")  # approved by the auto verdict at T0
    executor.now = lambda: T0 + timedelta(minutes=16)  # the policy's approval TTL is 15
    assert asyncio.run(executor.run_once()) == []
    record = ledger.proposal(pid)
    assert record.state == "expired" and not (tmp_path / "marker").exists()
    [why] = [e for e in ledger.events(proposal_id=pid) if e.type == "proposal_expired"]
    assert "not executed within 15 min" in why.data["reason"]
