"""The gate: `evaluate(proposal, history, now)` -> allow, needs_approval or deny, and why.

Pure: the same proposal, history and time always give the same verdict, so drills replay it.
The rules, in order: observe mode; allowed at all; cooldown per target and action (only
executions that took effect start it, unless `cooldown_after_failure`; a human may override it
where the rule says `cooldown_override`); dry-run mode; change freeze; auto mode within limits
and the global rate limit (every attempt counts); otherwise ask a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from agent.model import Proposal, Verdict
from policies.model import ActionRule, Freeze, Policy

# Actions whose live edits a GitOps controller would undo: their verdicts carry the target's
# GitOps rule (policies/model.py GitOpsRule) as `gitops_*` limits.
GITOPS_AWARE = frozenset({"rollback", "scale-up", "feature-flag-off", "failover"})


@dataclass(frozen=True)
class PastExecution:
    """An execution the gate must weigh (from the ledger): what ran, on what, when."""

    action: str
    target: str
    subject: str
    at: datetime
    took_effect: bool = True  # False: it failed or did not verify (see cooldown_after_failure)


@dataclass(frozen=True)
class Gate:
    policy: Policy

    def evaluate(self, proposal: Proposal, history: Sequence[PastExecution], now: datetime,
                 severity: int = 4, override_cooldown: bool = False) -> Verdict:
        """`override_cooldown`: a human approved past the cooldown, where the rule allows it."""
        verdict = self._evaluate(proposal, history, now, severity, override_cooldown)
        if proposal.action not in GITOPS_AWARE or not self.policy.gitops:
            return verdict  # without a gitops section the actions use GitOpsRule's defaults
        gitops = self.policy.gitops_rule(proposal.target).limits()
        return replace(verdict, limits={**gitops, **verdict.limits})

    def _evaluate(self, proposal: Proposal, history: Sequence[PastExecution], now: datetime,
                  severity: int, override_cooldown: bool) -> Verdict:
        mode, rule = self.policy.mode, self.policy.rule(proposal.action)
        if mode == "observe":
            return self._verdict("deny", "observe mode: recorded only, nothing is executed", rule)
        if rule is None or not rule.allowed:
            return self._verdict("deny", f"policy does not allow {proposal.action}", rule)
        blocked = None if override_cooldown and rule.cooldown_override else \
            self._cooldown(proposal, rule, history, now)
        if blocked:
            return replace(self._verdict("deny", blocked, rule), blocked_by="cooldown")
        if mode == "dry-run":
            return self._verdict("allow", "dry-run mode: validated, nothing changes", rule, dry=True)
        return self._human_or_auto(proposal, rule, history, now, severity)

    def _human_or_auto(self, proposal: Proposal, rule: ActionRule,
                       history: Sequence[PastExecution], now: datetime, severity: int) -> Verdict:
        freeze = self._freeze(now)
        if freeze is not None:
            if freeze.deny:
                return self._verdict("deny", f"change freeze until {freeze.end:%Y-%m-%d %H:%M}Z: "
                                     f"{freeze.reason}", rule)
            return self._ask(rule, f"change freeze ({freeze.reason}): a human must approve")
        if self.policy.mode != "auto" or not rule.auto:
            return self._ask(rule, f"{self.policy.mode} mode: {proposal.action} needs "
                             f"{rule.approvals} approval{'s' if rule.approvals > 1 else ''}")
        if severity > rule.max_severity_for_auto:
            return self._ask(rule, f"auto only for SEV-{rule.max_severity_for_auto} or worse; "
                             f"this is SEV-{severity}")
        if self._rate_exceeded(history, now):
            rl = self.policy.rate_limit
            return self._ask(rule, f"rate limit: {rl.max_executions} executions in "
                             f"{rl.per_minutes:g} min reached; a human must approve")
        return self._verdict("allow", "auto mode: policy allows this within its limits", rule)

    def _cooldown(self, proposal: Proposal, rule: ActionRule, history: Sequence[PastExecution],
                  now: datetime) -> str | None:
        minutes = rule.cooldown_minutes if rule.cooldown_minutes is not None \
            else self.policy.cooldown_minutes
        window = timedelta(minutes=minutes)
        counts = self.policy.cooldown_after_failure
        recent = [h for h in history if h.action == proposal.action and h.target == proposal.target
                  and h.subject == proposal.subject and now - window < h.at <= now
                  and (h.took_effect or counts)]
        if not recent:
            return None
        last = max(h.at for h in recent)
        return (f"cooldown: {proposal.action} on {proposal.subject} ran at {last:%H:%M}Z; "
                f"next allowed after {last + window:%H:%M}Z")

    def _rate_exceeded(self, history: Sequence[PastExecution], now: datetime) -> bool:
        window = timedelta(minutes=self.policy.rate_limit.per_minutes)
        count = sum(1 for h in history if now - window < h.at <= now)
        return count >= self.policy.rate_limit.max_executions

    def _freeze(self, now: datetime) -> Freeze | None:
        return next((f for f in self.policy.freezes if f.start <= now < f.end), None)

    def _ask(self, rule: ActionRule, reason: str) -> Verdict:
        return self._verdict("needs_approval", reason, rule)

    def _verdict(self, decision: str, reason: str, rule: ActionRule | None,
                 dry: bool = False) -> Verdict:
        approvals = rule.approvals if rule is not None and decision == "needs_approval" else 0
        limits = dict(rule.limits) if rule is not None else {}
        return Verdict(decision=decision, mode=self.policy.mode, reasons=(reason,),  # type: ignore[arg-type]
                       approvals_required=approvals, limits=limits, dry_run=dry)
