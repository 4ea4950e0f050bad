"""The action contract: plan the exact change, then execute, verify, revert or dry-run it.

Actions are idempotent: executing the same plan twice changes nothing the second time, which
is what lets the executor reconcile an execution interrupted by a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent.model import Plan, Proposal, TargetSpec
from agent.model.context import ActionContext


@dataclass(frozen=True)
class Outcome:
    """What execute/verify/revert/dry_run report: whether it held, and the facts to record."""

    ok: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "facts": self.facts}


@runtime_checkable
class Action(Protocol):
    """A mitigation. `mutates` is False for actions that only inform (investigate).

    Optional attribute `settle_s` (float): how long after a crash a write the action sent may
    still land. A new leader verifies an interrupted execution only after the claim's lease and
    this time have passed (the executor assumes 10 s when it is absent).
    """

    name: str
    summary: str
    mutates: bool

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        """None if the action can apply to `subject` of `target`; else why not (pure)."""
        ...

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        """Read live state and compute the exact change. Never mutates."""
        ...

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        ...

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        ...

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        ...

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        """Validate the plan against the live system without changing anything."""
        ...
