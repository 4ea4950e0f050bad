"""Approval records carry the identity that approved, on every backend (see conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.ledger import Ledger, TransitionError
from agent.model.identity import Identity
from tests.ledger.conftest import LedgerFactory
from tests.ledger.test_ledger_contract import T0, _proposal, _verdict

ALICE = Identity("kubernetes", "alice@example.com", "alice@example.com", ("sre", "system:authenticated"),
                 "uid-1")


def test_an_approval_keeps_source_subject_name_groups_and_uid(ledger_factory: LedgerFactory) -> None:
    ledger = ledger_factory()
    ledger.add_proposal(_proposal(), _verdict(approvals=2), T0, None)
    ledger.approve("p-aaaa01", ALICE, T0)
    ledger.close()
    reopened = ledger_factory()  # another process reads what was stored, not what was passed
    [approval] = reopened.proposal("p-aaaa01").approvals
    assert approval.identity == ALICE and approval.at == T0 and approval.kind == "proposal"
    assert reopened.proposal("p-aaaa01").approvers == ("alice@example.com",)
    [event] = [e for e in reopened.events(proposal_id="p-aaaa01") if e.type == "approval"]
    assert event.data["identity"]["source"] == "kubernetes" and event.data["identity"]["groups"][0] == "sre"
    reopened.close()


@pytest.mark.parametrize("again", ["Alice@Example.com", " alice@example.com", "alice@example.com\t",
                                   "\uff41\uff4c\uff49\uff43\uff45@example.com"])  # fullwidth letters: NFKC folds them
def test_one_subject_however_spelled_approves_once(ledger: Ledger, again: str) -> None:
    ledger.add_proposal(_proposal(), _verdict(approvals=2), T0, None)
    ledger.approve("p-aaaa01", ALICE, T0)
    with pytest.raises(TransitionError, match="already approved"):
        ledger.approve("p-aaaa01", Identity("slack", again, "Alice"), T0 + timedelta(seconds=1))
    assert ledger.proposal("p-aaaa01").state == "proposed"


@pytest.mark.parametrize("name", ["hemostat", "HEMOSTAT", "hemostat ", "dana"])
def test_proposer_and_the_human_who_diagnosed_cannot_approve(ledger: Ledger, name: str) -> None:
    from dataclasses import replace

    ledger.add_proposal(replace(_proposal(), triggered_by="Dana"), _verdict(), T0, None)
    with pytest.raises(TransitionError, match="separation of duties"):
        ledger.approve("p-aaaa01", name, T0)


def test_revert_approvals_are_kept_apart_from_the_proposal_s(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(), _verdict("allow"), T0, None)
    ledger.claim_execution("p-aaaa01", "hemostat", T0, {"action": "rollback"})
    ledger.transition("p-aaaa01", "succeeded", "hemostat", T0)
    record = ledger.approve_revert("p-aaaa01", ALICE, T0)
    assert [a.identity for a in record.revert_approvals] == [ALICE] and record.approvals == ()
    with pytest.raises(TransitionError, match="already approved reverting"):
        ledger.approve_revert("p-aaaa01", Identity("kubernetes", "ALICE@example.com"), T0)
