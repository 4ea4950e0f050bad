"""Reverting goes through the policy: refused for dry-runs, its own approvals, nothing written in
dry-run mode. On the real PostgreSQL ledger, with a real (file-writing) plugin action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.identity import ApprovalRefused
from agent.model.identity import Identity
from agent.reverts import RevertRefused
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
