"""Walk the decision tree over the findings: which mitigations to propose, and why. Pure.

Each proposal carries the branch path and the findings behind each step, in words:
"recent deployment: deploy 3f2a9c (...) at 02:51, 4 min before the incident; 37% of requests failing".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from agent.model import DecisionStep, Finding, Proposal, TargetSpec
from agent.registry import Registry
from policies.tree import Branch, Step, Tree


@dataclass(frozen=True)
class Skipped:
    """A step the tree would take but the action cannot apply here, and why."""

    branch: str
    action: str
    subject: str
    reason: str


@dataclass(frozen=True)
class Decision:
    proposals: tuple[Proposal, ...]
    skipped: tuple[Skipped, ...]
    branches: tuple[str, ...]


def decide(findings: Sequence[Finding], target: TargetSpec, tree: Tree, registry: Registry,
           now: datetime, incident_id: str | None = None) -> Decision:
    kinds = {f.kind for f in findings}
    proposals: list[Proposal] = []
    skipped: list[Skipped] = []
    taken: list[str] = []
    for branch in tree.branches:
        if not branch.matches(kinds):
            continue
        taken.append(branch.name)
        step_path = _path_step(branch, findings)
        for step in branch.propose:
            for subject, matched in _subjects(step, branch, findings, target):
                reason = registry.action(step.action).unavailable_reason(target, subject)
                if reason is not None:
                    skipped.append(Skipped(branch.name, step.action, subject, reason))
                    continue
                proposals.append(_proposal(step, subject, matched, step_path, target, now, incident_id))
        if branch.then == "stop":
            break
    return Decision(tuple(proposals), tuple(skipped), tuple(taken))


def _matching(branch: Branch, findings: Sequence[Finding]) -> list[Finding]:
    wanted = set(branch.any) | set(branch.all)
    return [f for f in findings if f.kind in wanted]


def _path_step(branch: Branch, findings: Sequence[Finding]) -> DecisionStep:
    matched = sorted(_matching(branch, findings), key=lambda f: (f.kind != "recent_deploy", f.severity))
    because = "; ".join(f.summary for f in matched[:3])
    return DecisionStep(branch.title, because, tuple(f"{f.kind}:{f.subject}" for f in matched))


def _subjects(step: Step, branch: Branch, findings: Sequence[Finding],
              target: TargetSpec) -> list[tuple[str, list[Finding]]]:
    if step.per == "flag":
        return [(flag.name, []) for flag in target.flags]
    if step.per == "target":
        return [(target.deployment or target.name, _matching(branch, findings))]
    kinds = set(step.kinds or branch.any + branch.all)
    by_subject: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.kind in kinds:
            by_subject.setdefault(finding.subject, []).append(finding)
    return list(by_subject.items())


def _proposal(step: Step, subject: str, matched: list[Finding], branch_step: DecisionStep,
              target: TargetSpec, now: datetime, incident_id: str | None) -> Proposal:
    params = dict(step.params)
    if step.param_from_kind and matched:
        params[step.param_from_kind] = sorted(matched, key=lambda f: f.severity)[0].kind
    path: tuple[DecisionStep, ...] = (branch_step,)
    subjects = {ref.split(":", 1)[1] for ref in branch_step.findings}
    if matched and step.per == "finding" and len(subjects) > 1:  # say which one this is about
        path += (DecisionStep(f"{step.action} {subject}", "; ".join(f.summary for f in matched[:2]),
                              tuple(f"{f.kind}:{f.subject}" for f in matched)),)
    return Proposal(
        id=proposal_id(target.name, step.action, subject, incident_id or now.isoformat()),
        target=target.name, action=step.action, subject=subject, params=params, path=path,
        reason=f"{step.action} {subject} — {branch_step.branch}: {branch_step.because}",
        created_at=now, incident_id=incident_id,
    )


def proposal_id(target: str, action: str, subject: str, salt: str) -> str:
    """Deterministic per incident, so a replayed incident proposes the same ids."""
    digest = hashlib.sha256(f"{target}|{action}|{subject}|{salt}".encode()).hexdigest()
    return f"p-{digest[:8]}"


def bind_incident(proposal: Proposal, incident_id: str) -> Proposal:
    """The proposal as part of an incident: its id then depends on the incident, not the time."""
    return replace(proposal, incident_id=incident_id, id=proposal_id(
        proposal.target, proposal.action, proposal.subject, incident_id))
