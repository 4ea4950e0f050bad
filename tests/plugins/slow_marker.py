"""A third-party action for the crash tests: writes `start`, waits, writes `done` to a file.

Installed into a temp site dir as a real distribution with an entry point, so the daemon
discovers it like any plugin. Counting `start` lines counts executions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from actions.base import Outcome
from agent.model import Change, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext


class SlowMarker:
    name = "slow-marker"
    summary = "test plugin: marks a file, slowly"
    mutates = True
    settle_s = 0.5

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        return None

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        path = str(proposal.params["file"])
        return Plan(action=self.name, target=proposal.target, subject=proposal.subject,
                    summary=f"mark {path}", changes=(Change(path, "lines", None, "start, done"),),
                    touches=(path,), state={"file": path, "sleep_s": proposal.params.get("sleep_s", 0),
                                            "verify_ok": proposal.params.get("verify_ok", True)})

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        path = Path(plan.state["file"])
        with path.open("a") as f:
            f.write("start\n")
        await asyncio.sleep(float(plan.state["sleep_s"]))
        with path.open("a") as f:
            f.write("done\n")
        return Outcome(True, "marked")

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        path = Path(plan.state["file"])
        done = path.exists() and "done" in path.read_text().split() and plan.state.get("verify_ok", True)
        return Outcome(done, "marker complete" if done else "marker incomplete")

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        Path(plan.state["file"]).unlink(missing_ok=True)
        return Outcome(True, "marker removed")

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(True, "would mark")
