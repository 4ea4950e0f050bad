"""The executor: runs approved proposals exactly once, verifies them, escalates or reverts.

Only the leader executes. Each run is claimed in the ledger (approved -> executing, a
compare-and-set) before the action starts, so a second daemon or a retry never runs it twice.
An execution found in `executing` by a new leader was interrupted by a crash: it is reconciled
by checking the action's effect (verify), never blindly rerun, and only once the old claim has
expired and the action's settle time has passed, so a write still in flight from the dead
leader is seen instead of being recorded as "not in place".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from actions.base import Outcome
from agent.diagnosis.runner import analyze_all, collect_all
from agent.diagnosis.wiring import App
from agent.execution import reverts, symptom
from agent.execution.approval_check import approvals_problem
from agent.ledger import Ledger, ProposalRecord
from agent.model import HemostatError, Plan, TargetSpec, redact
from agent.model.context import ActionContext, ProbeContext, utcnow
from agent.model.identity import Identity

DEFAULT_SETTLE_S = 10.0  # for actions that do not say how long their effect takes to show


@dataclass
class Executor:
    app: App
    ledger: Ledger
    actor: str
    now: Callable[[], datetime] = utcnow
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # between re-measurements of the symptom

    async def run_once(self) -> list[str]:
        """Expire stale proposals, then execute every approved one. Returns the ids run."""
        self.expire()
        ran = []
        for record in self.ledger.proposals(states=("approved",)):
            if await self.execute(record):
                ran.append(record.id)
        return ran

    def expire(self) -> None:
        now = self.now()
        for record in self.ledger.proposals(states=("proposed",)):
            if record.expires_at is not None and now >= record.expires_at:
                self.ledger.transition(record.id, "expired", self.actor, now,
                                       {"reason": "no decision before it expired"})
        for record in self.ledger.proposals(states=("approved",)):
            self.expire_stale_approval(record)

    def expire_stale_approval(self, record: ProposalRecord) -> bool:
        """An approval is for the situation it was given in: one not executed within the
        policy's approval TTL expires instead of running whenever an executor turns up."""
        ttl = timedelta(minutes=self.app.policy.approval_ttl_minutes)
        now = self.now()
        if record.state != "approved" or now < record.updated_at + ttl:
            return False
        self.ledger.transition(record.id, "expired", self.actor, now, {
            "reason": f"approved at {record.updated_at:%H:%M}Z but not executed within "
                      f"{self.app.policy.approval_ttl_minutes:g} min; propose it again if still needed"})
        return True

    async def execute(self, record: ProposalRecord) -> bool:
        """Plan, claim, run, verify. False when another executor claimed it first."""
        if self.expire_stale_approval(record):
            return False
        refused = self._refused_now(record)
        if refused is not None:
            self.ledger.transition(record.id, "rejected", "policy", self.now(), {"reason": refused})
            return False
        if approvals_problem(self.app, self.ledger, record, self.actor, self.now()) is not None:
            return False  # refused, and recorded (as tampering when the records never matched)
        if self.app.policy.mode == "dry-run" and not record.verdict.dry_run:
            # approved under another policy; dry-run mode now means nothing may change
            record = replace(record, verdict=replace(record.verdict, dry_run=True))
        action = self.app.registry.action(record.proposal.action)
        ctx = self.context(record)
        try:
            plan = await action.plan(record.proposal, ctx)
        except HemostatError as e:
            return self._plan_failed(record, e)
        if self.ledger.claim_execution(record.id, self.actor, self.now(), plan.to_json()) is None:
            return False
        outcome = await self._run(action, plan, ctx, record.verdict.dry_run)
        await self._finish(record, action, plan, ctx, outcome)
        return True

    def _refused_now(self, record: ProposalRecord) -> str | None:
        """The gate again, at run time: a cooldown or freeze that began after the approval
        (for example a twin proposal executed meanwhile) still stops it."""
        from agent.diagnosis.service import history_from

        incident = record.proposal.incident_id
        severity = self.ledger.incident(incident).severity if incident else 4
        now = self.now()
        overridden = any(e.type == "proposal_approved" and e.data.get("override") == "cooldown"
                         for e in self.ledger.events(proposal_id=record.id))
        verdict = self.app.gate.evaluate(record.proposal, history_from(self.ledger, self.app, now), now,
                                         severity, override_cooldown=overridden)
        return "; ".join(verdict.reasons) if verdict.decision == "deny" else None

    def _plan_failed(self, record: ProposalRecord, error: HemostatError) -> bool:
        """A plan that cannot be made (deployment gone, no previous revision): fail it, with why."""
        claimed = self.ledger.claim_execution(record.id, self.actor, self.now(), {"summary": "no plan"})
        if claimed is not None:
            self.ledger.transition(record.id, "failed", self.actor, self.now(),
                                   {"error": redact(str(error)), "code": error.code, "stage": "plan"})
        return claimed is not None

    async def _run(self, action: Any, plan: Plan, ctx: ActionContext, dry: bool) -> Outcome:
        lease = self.app.config.executor.claim_lease_s
        try:  # bounded by the claim's lease: a running action never outlives its claim
            outcome: Outcome = await asyncio.wait_for(
                action.dry_run(plan, ctx) if dry else action.execute(plan, ctx), lease)
            return outcome
        except TimeoutError:
            return Outcome(False, f"not finished within the claim lease ({lease:g} s)", {"code": "timeout"})
        except HemostatError as e:
            return Outcome(False, redact(str(e)), {"code": e.code})
        except Exception as e:  # an action bug is a failed execution, not a dead daemon
            return Outcome(False, f"{type(e).__name__}: {redact(str(e))}", {"code": "action_crashed"})

    async def _finish(self, record: ProposalRecord, action: Any, plan: Plan, ctx: ActionContext,
                      outcome: Outcome) -> None:
        pid, inc = record.id, record.proposal.incident_id
        self.ledger.append("execution_finished", self.actor, self.now(), incident_id=inc,
                           proposal_id=pid, data={**outcome.to_json(), "dry_run": record.verdict.dry_run})
        if not outcome.ok:
            self.ledger.transition(pid, "failed", self.actor, self.now(), {"error": outcome.detail})
            self._escalate(record, f"execution failed: {outcome.detail}")
            return
        changed_at = self.now()
        verified = await self._verify(action, plan, ctx, record.verdict.dry_run)
        if verified.ok and not record.verdict.dry_run and getattr(action, "mutates", True):
            verified = await self._symptom_gone(record, action, verified, changed_at)
        self.ledger.append("verification", self.actor, self.now(), incident_id=inc, proposal_id=pid,
                           data=verified.to_json())
        self.ledger.transition(pid, "succeeded" if verified.ok else "failed", self.actor, self.now(),
                               {"verified": verified.ok, "detail": verified.detail})
        if not verified.ok:
            await self._after_failed_verify(record, action, plan, ctx, verified)

    async def _verify(self, action: Any, plan: Plan, ctx: ActionContext, dry: bool) -> Outcome:
        if dry:
            return Outcome(True, "dry-run: nothing changed, nothing to verify")
        try:
            timeout = self.app.config.executor.verify_timeout_s
            return await asyncio.wait_for(action.verify(plan, ctx), timeout)
        except TimeoutError:
            return Outcome(False, f"not verified within {self.app.config.executor.verify_timeout_s:g}s")
        except HemostatError as e:
            return Outcome(False, redact(str(e)), {"code": e.code})

    async def _symptom_gone(self, record: ProposalRecord, action: Any, effect: Outcome,
                            changed_at: datetime) -> Outcome:
        """The effect is in place; verified only once the symptom it was for is gone too."""
        refs, probes = symptom.symptoms_of(self.ledger, record.proposal, self.app.tree.causality.symptoms)
        if not refs:
            return effect
        cfg = self.app.config.executor
        target = self.app.config.target(record.proposal.target)

        async def measure(names: list[str] | None) -> tuple[list[Any], list[Any]]:
            observations = await collect_all(target, self.app.registry, self._probe_context(), names)
            return observations, analyze_all(observations, target, self.app.registry, self.now())

        found = await symptom.remeasure(refs, probes, measure, self.now, self.sleep, changed_at,
                                        symptom.settle_of(action, cfg.symptom_settle_s), cfg.symptom_poll_s)
        detail = f"{effect.detail}; {found.detail}" if found.ok else \
            f"not verified: the effect is in place ({effect.detail}), but {found.detail}"
        return Outcome(found.ok, detail, {**effect.facts, "effect": "in place", **found.facts})

    async def _after_failed_verify(self, record: ProposalRecord, action: Any, plan: Plan,
                                   ctx: ActionContext, verified: Outcome) -> None:
        self._escalate(record, f"findings persist after {record.proposal.action}: {verified.detail}")
        if self.app.policy.revert_on_failed_verify and plan.reversible:
            await self.revert(record.id, reason="verification failed; policy reverts")

    async def revert(self, ref: str, reason: str, by: Identity | None = None) -> Outcome:
        """Undo an execution, through the policy. `by` is the human asking (one approval of the
        revert); None when the policy itself reverts (revert_on_failed_verify)."""
        record = self.ledger.proposal(ref)
        plan = reverts.revertible_plan(self.app, self.ledger, record)
        if by is not None:
            waiting = reverts.approve_revert(self.app, self.ledger, record, by, self.now())
            if waiting is not None:
                return waiting
        if self.app.policy.mode == "dry-run":
            return reverts.dry_run_revert(self.app, self.ledger, record, self.actor, reason, self.now())
        action = self.app.registry.action(record.proposal.action)
        outcome = await self._run_revert(action, plan, self.context(record))
        self.ledger.transition(record.id, "reverted", self.actor, self.now(),
                               {"reason": reason, **outcome.to_json()})
        self._no_longer_mitigated(record, outcome)
        return outcome

    def _no_longer_mitigated(self, record: ProposalRecord, outcome: Outcome) -> None:
        """An incident monitoring a mitigation that was just taken back is not monitoring
        anything: back to investigating, saying why (status text and state stay one story)."""
        incident_id = record.proposal.incident_id
        if not outcome.ok or incident_id is None or self.ledger.incident(incident_id).status != "monitoring":
            return
        what = f"{record.proposal.action} {record.proposal.subject}"
        self.ledger.set_incident_status(incident_id, "investigating", self.actor, self.now(), data={
            "reason": f"{what} reverted: no mitigation in place", "cause": "mitigation_reverted"})

    async def _run_revert(self, action: Any, plan: Plan, ctx: ActionContext) -> Outcome:
        try:
            return await action.revert(plan, ctx)  # type: ignore[no-any-return]
        except HemostatError as e:
            return Outcome(False, redact(str(e)), {"code": e.code})

    def _escalate(self, record: ProposalRecord, why: str) -> None:
        self.ledger.append("escalated", self.actor, self.now(), incident_id=record.proposal.incident_id,
                           proposal_id=record.id, data={"reason": why})

    async def reconcile(self) -> list[str]:
        """Settle executions a crash interrupted, once their claims are past (`reconcilable_at`):
        verify the effect; never run again. Call on every pass: a young claim waits for a later one."""
        settled, now = [], self.ledger.clock() or self.now()  # the ledger's clock: claims carry it (M2)
        for record in self.ledger.proposals(states=("executing",)):
            if now < self.reconcilable_at(record):
                continue
            settled.append(record.id)
            await self._reconcile_one(record)
        return settled

    def reconcilable_at(self, record: ProposalRecord) -> datetime:
        """When the truth about an interrupted execution can be read: its claim (made at
        `updated_at`) has expired, so the old leader's action can no longer be running, and the
        action's own settle time has passed, so a write it sent has landed or never will."""
        action = self.app.registry.action(record.proposal.action)
        settle = float(getattr(action, "settle_s", DEFAULT_SETTLE_S))
        return record.updated_at + timedelta(seconds=self.app.config.executor.claim_lease_s + settle)

    async def _reconcile_one(self, record: ProposalRecord) -> None:
        action = self.app.registry.action(record.proposal.action)
        if not record.plan or "action" not in record.plan:
            self.ledger.transition(record.id, "failed", self.actor, self.now(),
                                   {"reconciled": True, "detail": "interrupted before a plan was stored"})
            return
        verified = await self._verify(action, Plan.from_json(record.plan), self.context(record),
                                      record.verdict.dry_run)
        detail = ("interrupted, but its effect is in place" if verified.ok
                  else f"interrupted and its effect is not in place ({verified.detail}); not re-run")
        self.ledger.transition(record.id, "succeeded" if verified.ok else "failed", self.actor,
                               self.now(), {"reconciled": True, "detail": detail})
        if not verified.ok:
            self._escalate(record, detail)

    def context(self, record: ProposalRecord) -> ActionContext:
        target = self.app.config.target(record.proposal.target)
        return ActionContext(target=target, breakers=self.app.breakers, now=self.now,
                             kube=self.app.kube_provider(), limits=dict(record.verdict.limits),
                             reprobe=self._reprobe, actor=self.actor,
                             provenance={"incident": record.proposal.incident_id, "proposal": record.id,
                                         "approvers": list(record.approvers)})

    def _probe_context(self) -> ProbeContext:
        return ProbeContext(breakers=self.app.breakers, timeout_s=self.app.config.probe_timeout_s,
                            kube=self.app.kube_provider(), kube_endpoint=self.app.kube_endpoint_provider(),
                            now=self.now)

    async def _reprobe(self, target: TargetSpec, probe: str) -> list[Any]:
        observations = await collect_all(target, self.app.registry, self._probe_context(), [probe])
        return analyze_all(observations, target, self.app.registry, self.now())

