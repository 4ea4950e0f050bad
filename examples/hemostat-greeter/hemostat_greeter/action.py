"""The `cheer-up` action: POST <url>/cheer, verified by the greeter no longer being grumpy.
Plan first (what it will do, from live state), then execute, verify, revert, dry-run."""

from __future__ import annotations

from actions.base import Outcome
from agent.model import Change, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext
from hemostat_greeter import RBAC, GreeterSettings
from hemostat_greeter.http import call


class CheerUpAction:
    name = "cheer-up"
    summary = "example plugin: cheer the greeter app up"
    mutates = True
    settings = None  # shares the probe's settings (plugins.greeting); an action may have its own
    rbac = RBAC

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        return None if "greeting" in target.plugins else "the target has no plugins.greeting settings"

    def _config(self, target: TargetSpec) -> GreeterSettings:
        return GreeterSettings.model_validate(target.plugins["greeting"])

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        config = self._config(ctx.target)
        _, before = await call(f"{config.url.rstrip('/')}/greeting", config.timeout_s)
        return Plan(action=self.name, target=proposal.target, subject=proposal.subject,
                    summary=f"POST {config.url.rstrip('/')}/cheer",
                    changes=(Change(f"{config.url}", "greeting", before.strip(), "cheerful"),),
                    touches=(config.url,), reversible=False,
                    state={"url": config.url.rstrip("/"), "timeout_s": config.timeout_s})

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        status, _ = await call(f"{plan.state['url']}/cheer", plan.state["timeout_s"], method="POST")
        return Outcome(status < 300, f"the greeter answered {status}")

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        config = self._config(ctx.target)
        _, said = await call(f"{plan.state['url']}/greeting", plan.state["timeout_s"])
        grumpy = any(word in said.lower() for word in config.grumpy_words)
        return Outcome(not grumpy, f"the greeter now says {said.strip()[:80]!r}")

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(False, "a cheered-up greeter cannot be made grumpy again")

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, f"would {plan.summary}")

