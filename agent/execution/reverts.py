"""Reverting is a mitigation too: it goes through the policy before anything is undone.

The executor calls these before it reverts. A revert is refused for an execution that was a
dry-run (nothing was changed, so there is nothing to undo), for a plan that cannot be reverted,
and where the policy says `actions.<name>.revert.allowed: false`. A human's revert counts as one
approval of it; it runs once the policy's `revert.approvals` distinct, admissible people asked,
as the chain's `revert_approval` events prove (sealed with `store.seal_key`; the table's rows
alone count for nothing: agent.execution.approval_check).
In dry-run mode a revert is recorded and nothing is written.
"""

from __future__ import annotations

from datetime import datetime

from actions.base import Outcome
from agent.diagnosis.wiring import App
from agent.execution.approval_check import chain_approvals
from agent.execution.identity import ApprovalRefused, Approving, rules_for
from agent.ledger import Ledger, ProposalRecord
from agent.model import HemostatError, Plan
from agent.model.identity import Identity


class RevertRefused(HemostatError):
    code = "revert_refused"


def revertible_plan(app: App, ledger: Ledger, record: ProposalRecord) -> Plan:
    """The plan to undo, or RevertRefused saying why there is nothing (allowed) to undo."""
    if record.state not in ("succeeded", "failed") or not record.plan or "action" not in record.plan:
        raise RevertRefused(f"{record.id} is {record.state}; only executed proposals can be reverted")
    if record.verdict.dry_run or _ran_dry(ledger, record):
        raise RevertRefused(f"{record.id} ran as a dry-run: nothing was changed, so there is "
                            "nothing to revert")
    plan = Plan.from_json(record.plan)
    if not plan.reversible:
        raise RevertRefused(f"{record.id}: {plan.action} cannot be reverted ({plan.summary})")
    rule = app.policy.rule(record.proposal.action)
    if rule is None or not rule.revert.allowed:
        raise RevertRefused(f"{app.policy_path.name}: actions.{record.proposal.action}.revert.allowed "
                            f"is false; the policy does not allow reverting {record.proposal.action}")
    return plan


def _ran_dry(ledger: Ledger, record: ProposalRecord) -> bool:
    """What the execution itself recorded (the policy may have been in dry-run mode)."""
    return any(e.type == "execution_finished" and e.data.get("dry_run")
               for e in ledger.events(proposal_id=record.id))


def approve_revert(app: App, ledger: Ledger, record: ProposalRecord, who: Identity,
                   now: datetime) -> Outcome | None:
    """Record `who`'s approval of the revert. None when enough people approved to run it now;
    otherwise an Outcome saying how many more are needed."""
    approving = Approving.of(app)
    rules = rules_for(approving, record.proposal.action, revert=True)
    why = rules.refusal(who, ())  # whoever executed it may undo it: no separation needed here
    if why is not None:
        raise ApprovalRefused(f"revert of {record.id}: {why}")
    if not any(a.identity.same_person(who) for a in record.revert_approvals):
        record = ledger.approve_revert(record.id, who, now, seal_key=approving.seal_key)
    proven = chain_approvals(app, ledger, record, revert=True)  # the chain's, not the table's
    if isinstance(proven, str):
        raise RevertRefused(f"revert of {record.id}: {proven}")
    missing = rules.shortfall(proven, ())
    if missing is None:
        return None
    have = len({a.identity.subject for a in proven})
    return Outcome(False, f"revert of {record.id} approved by {who.name} ({have}/{rules.needed()}); "
                          "waiting for more approvals", {"pending": True})


def dry_run_revert(app: App, ledger: Ledger, record: ProposalRecord, actor: str, reason: str,
                   now: datetime) -> Outcome:
    """Dry-run mode: the revert passed the policy; record that, and write nothing."""
    detail = f"dry-run mode ({app.policy_path.name}): the revert was not applied; nothing was changed"
    ledger.append("revert_dry_run", actor, now, incident_id=record.proposal.incident_id,
                  proposal_id=record.id, data={"reason": reason, "detail": detail})
    return Outcome(True, detail, {"dry_run": True})
