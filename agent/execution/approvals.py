"""What `approve` does beyond the ledger's own approval: say plainly who will run the proposal
(a live leading daemon, by its heartbeat in the ledger, or `hemostat execute`), and approve past
a cooldown where the policy allows it, recorded with the human's reason.

Light on purpose: `hemostat approve` imports this and the ledger only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.execution.identity import ApprovalRefused, Approving, proposers, rules_for
from agent.ledger import Ledger, ProposalRecord
from agent.model import HemostatError
from agent.model.identity import Identity

EXECUTOR_ROLE = "executor"  # the heartbeat the leading daemon writes on every executor pass
LIVE_WITHIN = timedelta(seconds=30)  # a heartbeat this fresh: a leader will pick work up


def live_leader(ledger: Ledger, now: datetime) -> str | None:
    """The leading daemon, if its heartbeat in the ledger is fresh."""
    beat = ledger.heartbeat(EXECUTOR_ROLE)
    return beat[0] if beat is not None and now - beat[1] <= LIVE_WITHIN else None


def who_runs_it(ledger: Ledger, record: ProposalRecord, now: datetime) -> str:
    """One plain sentence: will this approved proposal run by itself, and when not, what to do."""
    if record.state != "approved":
        return f"it needs more approvals before anything runs ({record.state})"
    leader = live_leader(ledger, now)
    if leader is not None:
        return f"the running daemon ({leader}) will execute it within seconds"
    beat = ledger.heartbeat(EXECUTOR_ROLE)
    last = f"last heartbeat {beat[1]:%Y-%m-%d %H:%M}Z" if beat else "no daemon has ever run on this ledger"
    return f"no daemon is running ({last}): run `hemostat execute {record.id}` to execute it now"


def override_cooldown(ledger: Ledger, rules: Approving, ref: str, who: Identity, reason: str,
                      now: datetime) -> ProposalRecord:
    """Approve a proposal the gate denied only for its cooldown, where the action's rule says
    `cooldown_override: true`; the override, its reason and who gave it (an approval the
    policy's approvers rule admits) are in the ledger."""
    record = ledger.proposal(ref)
    rule = rules.policy.rule(record.proposal.action)
    if record.state != "denied" or record.verdict.blocked_by != "cooldown":
        raise HemostatError(f"{record.id} is {record.state} and not held by a cooldown; "
                            "--override-cooldown only applies to a proposal denied for its cooldown",
                            code="usage")
    if rule is None or not rule.cooldown_override:
        raise HemostatError(f"the policy does not let a human override the cooldown of "
                            f"{record.proposal.action} (actions.{record.proposal.action}.cooldown_override)",
                            code="usage")
    why = rules_for(rules, record.proposal.action).refusal(who, proposers(record, rules))
    if why is not None:
        raise ApprovalRefused(f"{record.id}: {why}")
    return ledger.approve(record.id, who, now, override={
        "override": "cooldown", "reason": reason, "denied_for": "; ".join(record.verdict.reasons)},
        seal_key=rules.seal_key)
