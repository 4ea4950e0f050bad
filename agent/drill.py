"""Drills: replay a recorded incident through triage -> decide -> gate, in dry-run, and check
the expectations. Every real incident recorded with `--record` becomes a regression test.

Scenario file (YAML or JSON): `name`, `target` (a target spec), `started_at`, `observations`
(what the probes saw), `expect` (`severity`, `branches`, `actions`). See docs/drills.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.config import first_error, read_yaml
from agent.model import ConfigError, Observation, Severity, TargetSpec
from agent.service import Diagnosis, evaluate
from agent.wiring import App


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: str | None = Field(None, description="SEV-1..SEV-4, or 'none' for healthy")
    branches: list[str] | None = None
    actions: list[str] | None = None

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        if value is None or value.lower() == "none":
            return value and "none"
        return Severity.parse(value).label()


class ObservationModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    probe: str
    target: str
    collected_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    target: TargetSpec
    started_at: datetime
    observations: list[ObservationModel]
    expect: Expect


@dataclass(frozen=True)
class DrillResult:
    path: Path
    name: str
    failures: tuple[str, ...]
    diagnosis: Diagnosis

    @property
    def passed(self) -> bool:
        return not self.failures


def load_scenario(path: Path) -> Scenario:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "a scenario must be a mapping")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        raise first_error(str(path), e) from None
    if scenario.started_at.tzinfo is None:
        raise ConfigError(str(path), "started_at", "needs a timezone (e.g. 2026-11-27T02:55:00Z)")
    return scenario


def run_drill(app: App, path: Path) -> DrillResult:
    scenario = load_scenario(path)
    for i, obs in enumerate(scenario.observations):
        if obs.probe not in app.registry.probes:
            raise ConfigError(str(path), f"observations.{i}.probe", f"unknown probe {obs.probe!r}")
    observations = [Observation(**o.model_dump()) for o in scenario.observations]
    diagnosis = evaluate(app, scenario.target, observations, scenario.started_at)
    return DrillResult(path, scenario.name, _check(scenario.expect, diagnosis), diagnosis)


def _check(expect: Expect, diagnosis: Diagnosis) -> tuple[str, ...]:
    failures = []
    severity = diagnosis.triage.severity.label() if diagnosis.triage.severity else "none"
    if expect.severity is not None and expect.severity != severity:
        failures.append(f"severity: expected {expect.severity}, got {severity}")
    branches = list(diagnosis.decision.branches)
    if expect.branches is not None and expect.branches != branches:
        failures.append(f"branches: expected {expect.branches}, got {branches}")
    actions = sorted({p.action for p in diagnosis.decision.proposals})
    if expect.actions is not None and sorted(set(expect.actions)) != actions:
        failures.append(f"actions: expected {sorted(set(expect.actions))}, got {actions}")
    for p in diagnosis.decision.proposals:
        verdict = diagnosis.verdicts[p.id]
        if verdict.decision == "allow" and not verdict.dry_run:
            failures.append(f"{p.action}: a drill must never allow a real execution")
    return tuple(failures)


def scenario_from(diagnosis: Diagnosis, target: TargetSpec, name: str) -> dict[str, Any]:
    """A scenario file's content from a live diagnosis: what `--record` writes."""
    severity = diagnosis.triage.severity.label() if diagnosis.triage.severity else "none"
    return {
        "name": name,
        "target": target.model_dump(mode="json", exclude_defaults=True),
        "started_at": diagnosis.started_at.isoformat(),
        "observations": [o.to_json() for o in diagnosis.observations],
        "expect": {"severity": severity, "branches": list(diagnosis.decision.branches),
                   "actions": sorted({p.action for p in diagnosis.decision.proposals})},
    }
