"""Action `investigate`: the tree's last branch. Mutates nothing; hands the engineer the
checklist for what the probes could not settle, and records that a human is on it."""

from __future__ import annotations

from actions.base import Outcome
from agent.model import Change, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext

CHECKLIST = (
    "read the error signatures and the pods' previous logs",
    "compare against the last good deploy (git log, rollout history)",
    "check dependencies' status pages and the database's sessions",
    "decide: rollback, scale, flag off, or keep digging; record it with `hemostat note`",
)


class InvestigateAction:
    name = "investigate"
    summary = "page a human with the evidence and the checklist; changes nothing"
    mutates = False
    settle_s = 0.0  # it changes nothing

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        return None

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"investigate {proposal.subject}: no automatic mitigation fits the evidence",
            changes=(Change("incident", "owner", None, "on-call engineer"),),
            touches=(), state={"checklist": list(CHECKLIST)}, reversible=True,
        )

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, "handed to the on-call engineer", {"checklist": list(CHECKLIST)})

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, "nothing to verify: no change was made")

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, "nothing to revert: no change was made")

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, "would hand the checklist to the on-call engineer")
