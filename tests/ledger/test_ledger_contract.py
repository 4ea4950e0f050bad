"""The ledger contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from agent.ledger import IncidentRecord, Ledger, LedgerError, TransitionError
from agent.model import DecisionStep, Proposal, Verdict

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _proposal(pid: str = "p-aaaa01", proposer: str = "hemostat", incident: str | None = None) -> Proposal:
    return Proposal(
        id=pid, target="checkout", action="rollback", subject="deployment/checkout",
        params={}, path=(DecisionStep("recent-deploy", "deploy 3f2a9c 4 min before errors"),),
        reason="rollback checkout", created_at=T0, proposer=proposer, incident_id=incident,
    )


def _verdict(decision: str = "needs_approval", approvals: int = 1) -> Verdict:
    return Verdict(decision=decision, mode="propose", reasons=("policy says so",),  # type: ignore[arg-type]
                   approvals_required=approvals)


def test_events_come_back_in_order_with_their_data(ledger: Ledger) -> None:
    ledger.append("note", "alice", T0, data={"text": "first"})
    ledger.append("note", "bob", T0 + timedelta(seconds=1), data={"text": "second"})
    events = ledger.events()
    assert [e.data["text"] for e in events] == ["first", "second"]
    assert events[0].seq < events[1].seq
    assert events[1].actor == "bob" and events[1].at == T0 + timedelta(seconds=1)


def test_proposal_needing_approval_waits_until_approved(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(), _verdict(), T0, T0 + timedelta(minutes=30))
    assert ledger.proposal("p-aaaa01").state == "proposed"
    record = ledger.approve("p-aaaa01", "alice", T0 + timedelta(minutes=1))
    assert record.state == "approved"
    assert record.approvers == ("alice",)
    approval = [e for e in ledger.events(proposal_id="p-aaaa01") if e.type == "approval"][0]
    assert approval.actor == "alice" and approval.at == T0 + timedelta(minutes=1)


def test_proposer_cannot_approve_their_own_proposal(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(proposer="alice"), _verdict(), T0, None)
    with pytest.raises(TransitionError, match="separation of duties"):
        ledger.approve("p-aaaa01", "alice", T0)
    assert ledger.proposal("p-aaaa01").state == "proposed"


def test_two_approvals_needed_means_one_is_not_enough(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(), _verdict(approvals=2), T0, None)
    assert ledger.approve("p-aaaa01", "alice", T0).state == "proposed"
    with pytest.raises(TransitionError, match="already approved"):
        ledger.approve("p-aaaa01", "alice", T0)
    assert ledger.approve("p-aaaa01", "bob", T0).state == "approved"


def test_expired_proposal_cannot_be_approved(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(), _verdict(), T0, T0 + timedelta(minutes=5))
    with pytest.raises(TransitionError, match="expired"):
        ledger.approve("p-aaaa01", "alice", T0 + timedelta(minutes=6))


def test_rejected_proposal_cannot_be_approved_later(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal(), _verdict(), T0, None)
    ledger.transition("p-aaaa01", "rejected", "alice", T0, {"reason": "not the deploy"})
    with pytest.raises(TransitionError, match="rejected"):
        ledger.approve("p-aaaa01", "bob", T0)
    rejected = [e for e in ledger.events() if e.type == "proposal_rejected"][0]
    assert rejected.data["reason"] == "not the deploy"


def test_allowed_proposal_starts_approved_and_denied_starts_denied(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal("p-allow1"), _verdict("allow"), T0, None)
    ledger.add_proposal(_proposal("p-deny01"), _verdict("deny"), T0, None)
    assert ledger.proposal("p-allow1").state == "approved"
    assert ledger.proposal("p-deny01").state == "denied"
    with pytest.raises(TransitionError):
        ledger.transition("p-deny01", "executing", "x", T0)


def test_execution_is_claimed_once_even_by_racing_claimers(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    setup = ledger_factory()
    setup.add_proposal(_proposal(), _verdict("allow"), T0, None)
    winners: list[str] = []
    barrier = threading.Barrier(4)

    def claim(name: str) -> None:
        ledger = ledger_factory()
        barrier.wait()
        if ledger.claim_execution("p-aaaa01", name, T0, {"summary": "x"}) is not None:
            winners.append(name)
        ledger.close()

    threads = [threading.Thread(target=claim, args=(f"daemon-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    record = setup.proposal("p-aaaa01")
    assert record.state == "executing" and record.claimed_by == winners[0]
    assert len([e for e in setup.events() if e.type == "execution_started"]) == 1
    setup.close()


def test_ids_resolve_by_unique_prefix_and_ambiguity_is_an_error(ledger: Ledger) -> None:
    ledger.add_proposal(_proposal("p-abc111"), _verdict(), T0, None)
    ledger.add_proposal(_proposal("p-abc222"), _verdict(), T0, None)
    assert ledger.proposal("p-abc1").id == "p-abc111"
    with pytest.raises(LedgerError, match="several"):
        ledger.proposal("p-abc")
    with pytest.raises(LedgerError, match="no proposal matches"):
        ledger.proposal("p-zzz")


def test_incident_lifecycle_is_recorded_on_the_timeline(ledger: Ledger) -> None:
    incident = IncidentRecord("inc-1", "checkout", "errors climbing", "opened", 2, T0, T0, "gk-1")
    ledger.open_incident(incident, "alertmanager")
    assert ledger.find_open_incident(group_key="gk-1") == incident
    ledger.set_incident_status("inc-1", "investigating", "hemostat", T0 + timedelta(minutes=1))
    resolved = ledger.set_incident_status("inc-1", "resolved", "alice", T0 + timedelta(minutes=9),
                                          severity=1)
    assert resolved.status == "resolved" and resolved.severity == 1
    assert resolved.resolved_at == T0 + timedelta(minutes=9)
    assert ledger.find_open_incident(group_key="gk-1") is None
    kinds = [(e.type, e.data.get("to")) for e in ledger.events(incident_id="inc-1")]
    assert kinds == [("incident_opened", None), ("status_changed", "investigating"),
                     ("status_changed", "resolved")]


def test_ledger_survives_reopening(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    first = ledger_factory()
    first.add_proposal(_proposal(), _verdict(), T0, None)
    first.close()
    second = ledger_factory()
    assert second.proposal("p-aaaa01").proposal.reason == "rollback checkout"
    second.close()


def test_two_leaders_never_execute_the_same_proposal(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = ledger_factory(), ledger_factory()
    assert first.try_lead("daemon-a") and not second.try_lead("daemon-b")
    assert first.try_lead("daemon-a") and not second.try_lead("daemon-b")  # kept, not re-won
    ids = [f"p-lead{i:02d}" for i in range(12)]
    for pid in ids:
        first.add_proposal(_proposal(pid), _verdict("allow"), T0, None)
    claimed: dict[str, list[str]] = {"daemon-a": [], "daemon-b": []}
    barrier = threading.Barrier(2)

    def executor_pass(ledger: Ledger, name: str) -> None:  # b believes it leads: a stale leader
        barrier.wait()
        for record in ledger.proposals(states=("approved",)):
            if ledger.claim_execution(record.id, name, T0, {"summary": "x"}) is not None:
                claimed[name].append(record.id)

    threads = [threading.Thread(target=executor_pass, args=(ledger, name))
               for ledger, name in ((first, "daemon-a"), (second, "daemon-b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(claimed["daemon-a"]) & set(claimed["daemon-b"])
    assert sorted(claimed["daemon-a"] + claimed["daemon-b"]) == ids
    assert len([e for e in first.events() if e.type == "execution_started"]) == len(ids)
    first.close()  # a leader that stops (or crashes) hands over
    assert second.try_lead("daemon-b")
    second.close()


def test_one_open_incident_per_target_even_when_two_writers_race(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = ledger_factory(), ledger_factory()
    a = IncidentRecord("inc-a", "checkout", "errors", "opened", 2, T0, T0, "group-1")
    b = IncidentRecord("inc-b", "checkout", "errors", "opened", 2, T0, T0, "group-2")
    assert first.open_or_join(a, "replica-1") == (a, True)
    joined, opened = second.open_or_join(b, "replica-2")
    assert (joined.id, opened) == ("inc-a", False)
    first.set_incident_status("inc-a", "resolved", "x", T0)
    assert second.open_or_join(b, "replica-2")[1] is True  # resolved ones do not count
    assert [i.id for i in first.incidents(open_only=True)] == ["inc-b"]
    first.close()
    second.close()


def test_an_unknown_incident_status_is_refused(ledger: Ledger) -> None:
    ledger.open_incident(IncidentRecord("inc-1", "checkout", "errors", "opened", 2, T0, T0), "x")
    with pytest.raises(LedgerError, match="unknown incident status 'fixed'"):
        ledger.set_incident_status("inc-1", "fixed", "alice", T0)
    assert ledger.incident("inc-1").status == "opened"


def test_events_of_some_types_are_filtered_in_the_query(ledger: Ledger) -> None:
    for i, kind in enumerate(["observations", "finding", "observations", "alert_fired", "finding"]):
        ledger.append(kind, "hemostat", T0 + timedelta(seconds=i), incident_id="inc-1", data={"i": i})
    assert [e.data["i"] for e in ledger.events(incident_id="inc-1", types=("finding", "alert_fired"))] == [1, 3, 4]
