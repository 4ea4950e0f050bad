"""The executor's last look before it acts: do the ledger's approval records justify running this?

The `state` column says `approved`, but a column is easy to set (`UPDATE proposals SET
state='approved'` from anyone holding the ledger DSN). So right before it plans anything, the
executor re-reads the approval records and re-checks them against the current policy: count,
distinct subjects, allowed groups, trusted sources, separation of duties. A proposal whose own
records never justified its state is refused and recorded as tampering; one whose approvals no
longer satisfy a changed policy is refused by policy.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from agent.diagnosis.wiring import App
from agent.execution.identity import Approving, proposers, rules_for
from agent.ledger import Ledger, ProposalRecord

log = structlog.get_logger("hemostat.executor")


def approvals_problem(app: App, ledger: Ledger, record: ProposalRecord, actor: str,
                      now: datetime) -> str | None:
    """None when `record` may run; else why not, after rejecting it (and recording tampering)."""
    fresh = ledger.proposal(record.id)  # the records as they are now, not as first listed
    needed = _needed_now(app, ledger, fresh, now)
    if needed == 0:
        return None
    rules = Approving.of(app)
    missing = rules_for(rules, fresh.proposal.action).shortfall(fresh.approvals,
                                                                proposers(fresh, rules), needed)
    if missing is None:
        return None
    if _tampered(fresh):
        log.error("tampering: approved without the approvals to justify it", proposal=fresh.id,
                  reason=missing)
        ledger.append("tampering", actor, now, incident_id=fresh.proposal.incident_id,
                      proposal_id=fresh.id, data={"state": fresh.state, "reason": missing,
                                                  "approvals": [a.to_json() for a in fresh.approvals]})
    ledger.transition(fresh.id, "rejected", "policy", now,
                      {"reason": f"not executed: {missing}"})
    return missing


def _needed_now(app: App, ledger: Ledger, record: ProposalRecord, now: datetime) -> int:
    """Approvals the current policy wants: none where it would run this without a human (auto
    within limits, dry-run mode), else the action's rule."""
    from agent.diagnosis.service import history_from

    incident = record.proposal.incident_id
    severity = ledger.incident(incident).severity if incident else 4
    verdict = app.gate.evaluate(record.proposal, history_from(ledger, app, now), now, severity)
    if verdict.decision == "allow":
        return 0
    rule = app.policy.rule(record.proposal.action)  # deny (a cooldown overridden) still needs them
    return rule.approvals if rule is not None else 1


def _tampered(record: ProposalRecord) -> bool:
    """The record contradicts itself: its verdict needed approvals its own ledger never got."""
    if record.verdict.decision == "allow":
        return False
    distinct = {a.identity.subject for a in record.approvals}
    return len(distinct) < max(1, record.verdict.approvals_required)
