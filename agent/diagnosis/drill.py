"""Drills: replay a recorded incident through triage -> decide -> gate, in dry-run, and check
the expectations. Every real incident recorded with `--record` becomes a regression test.

Scenario file (YAML or JSON): `name`, `target` (a target spec), `started_at`, `observations`
(what the probes saw), `history` (past executions, for cooldowns), `expect` (`severity`,
`branches`, `actions`, `not_actions`, `any_of`, `first`, `params`, `since`, `complete`,
`root_cause`). See
docs/drills.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.diagnosis.service import Diagnosis, evaluate
from agent.diagnosis.wiring import App
from agent.model import ConfigError, Observation, Severity, TargetSpec
from agent.model.config import first_error, read_yaml
from policies.gate import PastExecution


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: str | None = Field(None, description="SEV-1..SEV-4, or 'none' for healthy")
    branches: list[str] | None = None
    actions: list[str] | None = Field(None, description="exactly this set of actions proposed")
    not_actions: list[str] = Field(default_factory=list, description="none of these proposed")
    any_of: list[str] = Field(default_factory=list, description="at least one of these proposed")
    first: str | None = Field(None, description="the action proposed first (the best-supported cause)")
    params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="action -> params its proposal must carry")
    since: datetime | None = Field(None, description="triage's 'since', to the minute")
    complete: bool | None = Field(None, description="whether every probe could look")
    root_cause: str | None = Field(None, description="'KIND OBJECT' of the root cause heading the "
                                   "diagnosis (docs/findings.md), e.g. 'node_cordoned node/worker-3'")

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


class PastExecutionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str
    subject: str
    at: datetime
    target: str | None = Field(None, description="default: the scenario's target")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    target: TargetSpec
    started_at: datetime
    observations: list[ObservationModel]
    history: list[PastExecutionModel] = Field(default_factory=list)
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
    history = [PastExecution(h.action, h.target or scenario.target.name, h.subject, h.at)
               for h in scenario.history]
    diagnosis = evaluate(app, scenario.target, observations, scenario.started_at, history)
    return DrillResult(path, scenario.name, _check(scenario.expect, diagnosis), diagnosis)


def _check(expect: Expect, diagnosis: Diagnosis) -> tuple[str, ...]:
    failures = []
    severity = diagnosis.triage.severity.label() if diagnosis.triage.severity else "none"
    if expect.severity is not None and expect.severity != severity:
        failures.append(f"severity: expected {expect.severity}, got {severity}")
    branches = list(diagnosis.decision.branches)
    if expect.branches is not None and expect.branches != branches:
        failures.append(f"branches: expected {expect.branches}, got {branches}")
    failures += _check_actions(expect, diagnosis)
    failures += _check_timing(expect, diagnosis)
    if expect.root_cause is not None:
        head = next((f"{f.kind} {f.subject}" for f in diagnosis.findings if "root_cause" in f.facts), "none")
        if head != expect.root_cause:
            failures.append(f"root_cause: expected {expect.root_cause}, got {head}")
    for p in diagnosis.decision.proposals:
        verdict = diagnosis.verdicts[p.id]
        if verdict.decision == "allow" and not verdict.dry_run:
            failures.append(f"{p.action}: a drill must never allow a real execution")
    return tuple(failures)


def _check_actions(expect: Expect, diagnosis: Diagnosis) -> list[str]:
    proposals = diagnosis.decision.proposals
    actions = sorted({p.action for p in proposals})
    failures = []
    if expect.actions is not None and sorted(set(expect.actions)) != actions:
        failures.append(f"actions: expected {sorted(set(expect.actions))}, got {actions}")
    unwanted = sorted(set(expect.not_actions) & set(actions))
    if unwanted:
        failures.append(f"not_actions: {', '.join(unwanted)} proposed: "
                        + "; ".join(p.reason for p in proposals if p.action in unwanted))
    if expect.any_of and not set(expect.any_of) & set(actions):
        failures.append(f"any_of: expected one of {expect.any_of}, got {actions}")
    first = proposals[0].action if proposals else None
    if expect.first is not None and expect.first != first:
        failures.append(f"first: expected {expect.first}, got {first}")
    for action, wanted in expect.params.items():
        got = [p.params for p in proposals if p.action == action]
        if not any(all(params.get(k) == v for k, v in wanted.items()) for params in got):
            failures.append(f"params: expected {action} with {wanted}, got {got or 'no proposal'}")
    return failures


def _check_timing(expect: Expect, diagnosis: Diagnosis) -> list[str]:
    failures = []
    since = diagnosis.triage.since
    if expect.since is not None and (since is None or abs((since - expect.since).total_seconds()) >= 60):
        got = since.isoformat() if since else None
        failures.append(f"since: expected {expect.since.isoformat()}, got {got}")
    if expect.complete is not None and expect.complete != diagnosis.triage.complete:
        missing = ", ".join(f"{g.probe}: {g.why}" for g in diagnosis.triage.missing) or "nothing missing"
        failures.append(f"complete: expected {expect.complete}, got {diagnosis.triage.complete} ({missing})")
    return failures


def conclusions(result: DrillResult) -> dict[str, Any]:
    """What the drill concluded, for `drill --json`: the answer an engineer would have seen."""
    d = result.diagnosis
    return {"file": str(result.path), "name": result.name, "passed": result.passed,
            "failures": list(result.failures),
            "severity": d.triage.severity.label() if d.triage.severity else None,
            "headline": d.triage.headline, "since": d.triage.since.isoformat() if d.triage.since else None,
            "complete": d.triage.complete, "missing": [g.to_json() for g in d.triage.missing],
            "branches": list(d.decision.branches), "ruled_out": list(d.decision.ruled_out),
            "proposals": [{"action": p.action, "subject": p.subject, "params": p.params, "role": p.role,
                           "reason": p.reason, "support": list(p.support), "against": list(p.against),
                           "preview": p.preview, "verdict": d.verdicts[p.id].decision}
                          for p in d.decision.proposals]}


def scenario_from(diagnosis: Diagnosis, target: TargetSpec, name: str) -> dict[str, Any]:
    """A scenario file's content from a live diagnosis: what `--record` writes."""
    severity = diagnosis.triage.severity.label() if diagnosis.triage.severity else "none"
    return {
        "name": name,
        "target": target.model_dump(mode="json", exclude_defaults=True),
        "started_at": diagnosis.started_at.isoformat(),
        "observations": [o.to_json() for o in diagnosis.observations],
        "expect": {"severity": severity, "branches": list(diagnosis.decision.branches),
                   "actions": sorted({p.action for p in diagnosis.decision.proposals}),
                   "complete": diagnosis.triage.complete,
                   **({"since": diagnosis.triage.since.isoformat()} if diagnosis.triage.since else {})},
    }
