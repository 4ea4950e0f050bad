"""The probe contract: `collect` does the I/O, `analyze` turns what was collected into findings.

The split is what makes incidents replayable: `hemostat diagnose --record` saves the
observations, and `hemostat drill` runs `analyze` on them again without touching anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from agent.model import Finding, Observation, TargetSpec
from agent.model.context import ProbeContext


@runtime_checkable
class Probe(Protocol):
    """A diagnostic probe. Instances are stateless; the runner bounds `collect` by a timeout."""

    name: str
    summary: str

    def applies_to(self, target: TargetSpec) -> bool:
        """Whether the target configures what this probe looks at."""
        ...

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        """Gather raw, JSON-able data. Raise a `HemostatError` for a gap worth naming."""
        ...

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        """Pure: the findings this observation supports at `now` (the incident's start)."""
        ...
