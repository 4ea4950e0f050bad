"""The executor's last look before it acts: does the hash chain prove this was approved?

The `state` column says `approved`, but a column is easy to set (`UPDATE proposals SET
state='approved'`, `INSERT INTO approvals`, an edited subject: anyone holding the ledger's
runtime DSN). So right before it plans anything, the executor reads the proposal's events from
the chain, not the tables: the content it runs (target, action, subject, params) must be the
content the chain's `proposal` event recorded, and only `approval` events count, each bound to
that content's hash and, when `store.seal_key` is set, sealed by the daemon (approvals by an
approver's own PostgreSQL login are written only by the database's approval function;
agent.ledger.binding). Those are re-checked against the current policy: count, distinct subjects,
allowed groups, trusted sources, separation of duties. A proposal whose records contradict the
chain is refused and recorded as tampering; one whose approvals no longer satisfy a changed
policy is refused by policy.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from agent.diagnosis.wiring import App
from agent.execution.identity import Approving, proposers, rules_for, seal_key_of
from agent.ledger import Ledger, ProposalRecord
from agent.ledger.binding import REVERT, content_hash, sealed
from agent.model.identity import Approval, Identity

log = structlog.get_logger("hemostat.executor")


def approvals_problem(app: App, ledger: Ledger, record: ProposalRecord, actor: str,
                      now: datetime) -> str | None:
    """None when `record` may run; else why not, after rejecting it (and recording tampering)."""
    fresh = ledger.proposal(record.id, exact=True)  # the records as they are now
    proven = chain_approvals(app, ledger, fresh)
    if isinstance(proven, str):
        return _refuse(ledger, fresh, actor, now, proven, tampering=True)
    needed = _needed_now(app, ledger, fresh, now)
    if needed == 0:
        return None
    rules = Approving.of(app)
    missing = rules_for(rules, fresh.proposal.action).shortfall(proven, proposers(fresh, rules), needed)
    if missing is None:
        return None
    return _refuse(ledger, fresh, actor, now, missing, tampering=_tampered(fresh, proven))


def chain_approvals(app: App, ledger: Ledger, record: ProposalRecord,
                    revert: bool = False) -> tuple[Approval, ...] | str:
    """The approvals (of its revert, with `revert`) the chain proves for `record` as it now
    stands; or why its record contradicts the chain (its content changed since it was proposed)."""
    kind = "revert_approval" if revert else "approval"
    events = ledger.events(proposal_id=record.id, types=("proposal", kind))
    created = next((e for e in events if e.type == "proposal"), None)
    if created is None:
        return "the chain holds no proposal event for it: the record was not written by Hemostat"
    content = content_hash(record.proposal.to_json())
    if content_hash(created.data.get("proposal") or {}) != content:
        return ("its target, action, subject or params differ from what the chain recorded when "
                "it was proposed: the record was edited")
    key, guarded = seal_key_of(app.config), bool(getattr(ledger, "guards_login_approvals", False))
    proven = []
    bound = REVERT + content if revert else content
    for event in events:
        data, who = event.data, event.data.get("identity")
        if event.type != kind or not isinstance(who, dict) or data.get("content", bound) != bound:
            continue
        if who.get("source") == "postgres" and guarded:
            pass  # only hemostat_approve() may write these (pg_trust.EVENT_GUARD)
        elif key is not None and not sealed(key, record.id, data):
            log.warning("unsealed approval ignored", proposal=record.id, seq=event.seq)
            continue
        proven.append(Approval(Identity.from_json(who), event.at, "revert" if revert else "proposal"))
    return tuple(proven)


def _refuse(ledger: Ledger, record: ProposalRecord, actor: str, now: datetime, why: str,
            tampering: bool) -> str:
    if tampering:
        log.error("tampering: the records contradict the chain", proposal=record.id, reason=why)
        ledger.append("tampering", actor, now, incident_id=record.proposal.incident_id,
                      proposal_id=record.id, data={"state": record.state, "reason": why,
                                                   "approvals": [a.to_json() for a in record.approvals]})
    if record.state in ("approved", "proposed"):
        ledger.transition(record.id, "rejected", "policy", now, {"reason": f"not executed: {why}"})
    return why


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


def _tampered(record: ProposalRecord, proven: tuple[Approval, ...]) -> bool:
    """The record contradicts itself or the chain: approvals in the table the chain does not
    prove, or a verdict that needed approvals the chain never got."""
    if {(a.identity.source, a.identity.subject) for a in record.approvals} != \
            {(a.identity.source, a.identity.subject) for a in proven}:
        return True
    if record.verdict.decision == "allow":
        return False
    distinct = {a.identity.subject for a in proven}
    return len(distinct) < max(1, record.verdict.approvals_required)
