"""Action `feature-flag-off`: turn off the feature flag named by the proposal's subject.

The playbook's "otherwise" branch: when no single cause shows, switching off the newest risky
feature is the cheapest mitigation. The flag comes from the target's `flags` (`FlagSpec`), and
its backend (ConfigMap key, Unleash, JSON webhook) from `flag_backends.py`. The plan records the
flag's state before; `execute` on a flag that is already off changes nothing; `revert` restores
the recorded state (on, unless it was already off before the plan). Called by the executor.
"""

from __future__ import annotations

from actions import _gitops
from actions.base import Outcome
from actions.flag_backends import ConfigMapFlag, FlagBackend, backend_for
from agent.model import Change, FlagSpec, PermanentError, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext
from agent.model.rbac import EVENTS, KubeRule, gitops_rules


def _flag(target: TargetSpec, name: str) -> FlagSpec | None:
    return next((f for f in target.flags if f.name == name), None)


def _backend(ctx: ActionContext, name: str) -> FlagBackend:
    spec = _flag(ctx.target, name)
    if spec is None:
        raise PermanentError(f"flag {name} is not configured in target {ctx.target.name}",
                             code="flag_unconfigured")
    return backend_for(spec, ctx)


def _word(enabled: bool) -> str:
    return "on" if enabled else "off"


class FeatureFlagOffAction:
    name = "feature-flag-off"
    summary = "turn a feature flag off (ConfigMap key, Unleash, or a JSON flag webhook)"
    # The ConfigMap backend's calls; Unleash and webhooks need no Kubernetes rights.
    kube_rules = (KubeRule("", "configmaps", ("get", "patch"), "configured", "the flag's key"), EVENTS,
                  *gitops_rules(("get",), "does a GitOps controller put the key back"))
    mutates = True

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        if _flag(target, subject) is None:
            return f"flag {subject} is not configured in target {target.name}"
        return None

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        backend = _backend(ctx, proposal.subject)
        before = await backend.get()
        warning = ""
        if isinstance(backend, ConfigMapFlag):  # Unleash and webhooks are their own truth
            warning = await _gitops.configmap_warning(ctx, backend.name)
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"turn flag {proposal.subject} off ({backend.where})"
                    + ("" if before else " (already off: nothing to do)") + warning,
            changes=(Change(backend.where, "enabled", before, False),),
            touches=(backend.where,),
            state={"flag": proposal.subject, "before": before},
            blast_radius={"flags": 1},
        )

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return await self._switch(plan, ctx, enabled=False)

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return await self._switch(plan, ctx, enabled=bool(plan.state.get("before", True)))

    async def _switch(self, plan: Plan, ctx: ActionContext, enabled: bool) -> Outcome:
        backend = _backend(ctx, plan.subject)
        if await backend.get() == enabled:
            return Outcome(True, f"{backend.where} already {_word(enabled)}: nothing changed",
                           {"changed": False, "enabled": enabled})
        await backend.set(enabled)
        return Outcome(True, f"{backend.where} turned {_word(enabled)}",
                       {"changed": True, "enabled": enabled})

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        backend = _backend(ctx, plan.subject)
        enabled = await backend.get()
        return Outcome(not enabled, f"{backend.where} is {_word(enabled)}", {"enabled": enabled})

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        backend = _backend(ctx, plan.subject)
        enabled = await backend.get()
        if enabled:
            await backend.set(False, dry_run=True)
        return Outcome(True, f"would turn {backend.where} off (now {_word(enabled)}); nothing changed",
                       {"enabled": enabled})
