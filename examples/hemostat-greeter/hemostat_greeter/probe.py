"""The `greeting` probe: GET <url>/greeting; a grumpy word in the answer is a finding of the
plugin's own kind, `greeter_grumpy`, which the plugin's tree fragment maps to `cheer-up`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.model import Finding, Observation, Severity, TargetSpec
from agent.model.context import ProbeContext
from agent.model.plugin_api import settings_of
from hemostat_greeter import RBAC, TREE, GreeterSettings
from hemostat_greeter.http import call


class GreetingProbe:
    name = "greeting"
    summary = "example plugin: is the greeter app grumpy?"
    settings = GreeterSettings  # validated at start-up, errors name targets.N.plugins.greeting.*
    tree = TREE  # the branches this plugin adds to the decision tree
    rbac = RBAC

    def applies_to(self, target: TargetSpec) -> bool:
        return self.name in target.plugins

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        config: GreeterSettings = settings_of(target, self)
        status, body = await call(f"{config.url.rstrip('/')}/greeting", config.timeout_s)
        return {"status": status, "greeting": body.strip()}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        config: GreeterSettings = settings_of(target, self)
        said = str(observation.data.get("greeting", ""))
        if not any(word in said.lower() for word in config.grumpy_words):
            return []
        return [Finding("greeter_grumpy", target.name, Severity.SEV3, observation.collected_at,
                        f"the greeter says {said[:80]!r}", self.name, evidence=(said[:200],))]
