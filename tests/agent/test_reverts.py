"""Reverting goes through the policy: refused for dry-runs, its own approvals, nothing written in
dry-run mode. On the real PostgreSQL ledger, with a real (file-writing) plugin action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.execution.identity import ApprovalRefused
from agent.execution.reverts import RevertRefused
from agent.model.identity import Identity
from tests.agent.test_approval_recheck import SRE, Setup, open_setup

AUTO = {"mode": "auto", "actions": {"slow-marker": {"auto": True}}}
BOB = Identity("kubernetes", "bob", "bob", ("sre",))


@pytest.fixture
def setup(pg_db: str, tmp_path: Path) -> Iterator[Setup]:
    yield from open_setup(pg_db, tmp_path)


def _executed(setup: Setup, policy: dict[str, object]) -> str:
    pid = setup.propose()
    setup.ledger.approve(pid, SRE, setup.ledger.proposal(pid).updated_at)
    assert asyncio.run(setup.executor(policy).run_once()) == [pid]
    return pid


def test_a_dry_run_execution_cannot_be_reverted_because_nothing_changed(setup: Setup) -> None:
    pid = _executed(setup, {"mode": "dry-run", "actions": {"slow-marker": {}}})
    assert not setup.marker.exists()  # the dry-run wrote nothing
    setup.marker.write_text("someone else's file\n")
    with pytest.raises(RevertRefused, match="ran as a dry-run: nothing was changed"):
        asyncio.run(setup.executor(AUTO).revert(pid, "undo", by=BOB))
    assert setup.marker.read_text() == "someone else's file\n"  # the revert did not delete it
    assert setup.ledger.proposal(pid).state == "succeeded"


def test_in_dry_run_mode_a_revert_is_recorded_and_writes_nothing(setup: Setup) -> None:
    pid = _executed(setup, AUTO)
    dry = {"mode": "dry-run", "approvers": {"sources": ["kubernetes"]}, "actions": {"slow-marker": {}}}
    outcome = asyncio.run(setup.executor(dry).revert(pid, "undo", by=BOB))
    assert outcome.ok and "nothing was changed" in outcome.detail
    assert setup.marker.read_text().split() == ["start", "done"]
    assert setup.ledger.proposal(pid).state == "succeeded"
    assert "revert_dry_run" in [e.type for e in setup.ledger.events(proposal_id=pid)]


def test_a_revert_waits_for_the_policy_s_revert_approvals(setup: Setup) -> None:
    policy = {"mode": "auto", "actions": {"slow-marker": {"auto": True, "revert": {"approvals": 2}}}}
    pid = _executed(setup, policy)
    first = asyncio.run(setup.executor(policy).revert(pid, "undo", by=BOB))
    assert not first.ok and first.facts["pending"] and "(1/2)" in first.detail
    assert setup.marker.exists()
    again = asyncio.run(setup.executor(policy).revert(pid, "undo", by=Identity("kubernetes", " BOB ")))
    assert again.facts.get("pending") and setup.marker.exists()  # one person, counted once
    done = asyncio.run(setup.executor(policy).revert(pid, "undo", by=SRE))
    assert done.ok and not setup.marker.exists()
    assert setup.ledger.proposal(pid).state == "reverted"


def test_revert_refused_where_the_policy_says_so(setup: Setup) -> None:
    policy = {"mode": "auto", "approvers": {"groups": ["dba"]},
              "actions": {"slow-marker": {"auto": True, "revert": {"allowed": False}}}}
    pid = _executed(setup, AUTO)
    with pytest.raises(RevertRefused, match=r"actions.slow-marker.revert.allowed is false"):
        asyncio.run(setup.executor(policy).revert(pid, "undo", by=BOB))
    grouped = {"mode": "auto", "approvers": {"groups": ["dba"]}, "actions": {"slow-marker": {"auto": True}}}
    with pytest.raises(ApprovalRefused, match=r"bob \(kubernetes\) is in none of approvers.groups \(dba\)"):
        asyncio.run(setup.executor(grouped).revert(pid, "undo", by=BOB))
    assert setup.marker.exists()


def test_reverting_a_dry_run_scale_up_writes_nothing_to_the_cluster(
        kube_api: Any, kube_client: Any, tmp_path: Path) -> None:
    """The issue's case: a drill scaled 8 -> 3 on revert. Now the dry-run execution validates
    server-side (dryRun=All) and the revert is refused before any request."""
    from agent.diagnosis.registry import Registry
    from agent.diagnosis.wiring import build_app
    from agent.execution.executor import Executor
    from agent.ledger.sqlite import SqliteLedger
    from agent.model import DecisionStep, Proposal, TargetSpec, Verdict
    from agent.model.config import Config
    from policies.model import bundled_policy_path
    from tests.actions.test_scale_up import APP, NS, replicas, setup_cluster

    setup_cluster(kube_api, replicas=8)
    target = TargetSpec(name="shop-app", namespace=NS, deployment=APP)
    app = build_app(Config(targets=[target]), Registry.discover(), bundled_policy_path("staging-drill"))
    app.kube = lambda: kube_client
    ledger = SqliteLedger(tmp_path / "ledger.db")
    proposal = Proposal(id="p-drill1", target="shop-app", action="scale-up", subject=APP,
                        params={"replicas": 12}, path=(DecisionStep("cpu", "saturated"),),
                        reason="cpu saturated", created_at=datetime.now(UTC))
    ledger.add_proposal(proposal, Verdict("allow", "dry-run", ("dry-run mode",), dry_run=True),
                        datetime.now(UTC), None)
    executor = Executor(app, ledger, "hemostat")
    assert asyncio.run(executor.run_once()) == ["p-drill1"]
    writes = [r for r in kube_api.requests if r[0] in ("PATCH", "PUT", "POST")]
    assert writes and all("dryRun=All" in path for _, path in writes)
    with pytest.raises(RevertRefused, match="nothing was changed"):
        asyncio.run(executor.revert("p-drill1", "undo the drill", by=BOB))
    assert [r for r in kube_api.requests if r[0] in ("PATCH", "PUT", "POST")] == writes
    assert replicas(kube_api) == 8
    ledger.close()
