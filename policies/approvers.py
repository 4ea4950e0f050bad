"""Who may approve: the policy's `approvers` rules applied to authenticated identities.

Pure and shared by the two places that must agree: admitting an approval when it is given
(CLI, approval API, Slack, PostgreSQL) and the executor's re-check of the recorded approvals
right before it runs anything. Each refusal names the policy file and field that decided it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.model.identity import Approval, Identity
from policies.model import Policy

ASSERTED_HINT = ("Approve with an identity a system vouches for: `hemostat approve --server URL` "
                 "sends your Kubernetes credentials to the daemon's approval API")


@dataclass(frozen=True)
class Approvals:
    """The policy's rules for one action (or its revert), with where they came from."""

    policy: Policy
    where: str  # the policy file, for messages
    action: str
    revert: bool = False

    def needed(self) -> int:
        rule = self.policy.rule(self.action)
        if rule is None:
            return 1
        return rule.revert.approvals if self.revert else rule.approvals

    def refusal(self, who: Identity, proposers: Sequence[str] = ()) -> str | None:
        """Why `who` may not approve, or None when they may."""
        rules, field = self.policy.approvers_for(self.action, self.revert)
        if who.source not in rules.sources:
            trusted = ", ".join(rules.sources) or "none"
            if who.source == "asserted":
                return (f"{self.where}: {field}.sources does not include 'asserted' (a name given "
                        f"with --user or the OS user, here {who.name!r}, proves nothing); trusted: "
                        f"{trusted}. {ASSERTED_HINT}")
            return f"{self.where}: {field}.sources does not include {who.source!r} (trusted: {trusted})"
        if rules.groups and not set(who.groups) & set(rules.groups):
            return (f"{self.where}: {who.describe()} is in none of {field}.groups "
                    f"({', '.join(rules.groups)})")
        if any(who.same_person(p) for p in proposers):
            return f"{who.name} proposed it and cannot also approve it (separation of duties)"
        return None

    def shortfall(self, approvals: Sequence[Approval], proposers: Sequence[str],
                  needed: int | None = None) -> str | None:
        """The executor's re-check: None when enough distinct, still-admissible people approved;
        otherwise what is missing and which recorded approvals no longer count, and why."""
        want = self.needed() if needed is None else needed
        counted: set[str] = set()
        problems = []
        for approval in approvals:
            why = self.refusal(approval.identity, proposers)
            if why is not None:
                problems.append(f"{approval.identity.describe()} does not count: {why}")
            else:
                counted.add(approval.identity.subject)
        if len(counted) >= want:
            return None
        what = "revert of " if self.revert else ""
        summary = (f"{what}{self.action} needs {want} approval{'s' if want > 1 else ''} from distinct "
                   f"people; the ledger holds {len(counted)} that count")
        return "; ".join([summary, *problems])
