"""Walk the decision tree over the findings: which causes the evidence supports, which
mitigations to propose for them, and why. Pure.

Every branch whose kinds match is a candidate cause. Time rules some out (`before: symptom`: a
deploy that landed after the errors began did not cause them) and so can required evidence (a
docs-only change). Competing candidates are ranked by the weight of the evidence they hold; the
best is proposed as the cause and the rest as alternatives. Each proposal carries the evidence
for it, the evidence against it, and what it would do now (its preview).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from agent.diagnosis.evidence import Evidence, explained
from agent.diagnosis.preview import preview
from agent.diagnosis.registry import Registry
from agent.model import DecisionStep, Finding, Proposal, TargetSpec
from policies.tree import Branch, Step, Tree

DEPENDENCY_KINDS = frozenset({"dependency_down", "dependency_slow", "provider_incident"})

Role = Literal["primary", "alternative"]


@dataclass(frozen=True)
class Skipped:
    """A step the tree would take but the action cannot apply here, and why."""

    branch: str
    action: str
    subject: str
    reason: str


@dataclass(frozen=True)
class Cause:
    """A branch the evidence supports: its cause findings, their weight, and the words for and
    against it."""

    branch: Branch
    findings: tuple[Finding, ...]
    score: int
    support: tuple[str, ...]
    against: tuple[str, ...]
    role: Role = "primary"

    @property
    def onset(self) -> datetime | None:
        return min((f.began for f in self.findings), default=None)


@dataclass(frozen=True)
class Decision:
    proposals: tuple[Proposal, ...]
    skipped: tuple[Skipped, ...]
    branches: tuple[str, ...]
    causes: tuple[Cause, ...] = ()
    ruled_out: tuple[str, ...] = ()  # candidates the evidence excluded, and why


def decide(findings: Sequence[Finding], target: TargetSpec, tree: Tree, registry: Registry,
           now: datetime, incident_id: str | None = None) -> Decision:
    ev = Evidence(tuple(findings), target, frozenset(tree.causality.symptoms),
                  timedelta(minutes=tree.causality.tolerance_minutes))
    live = [f for f in findings if not f.noise and not explained(f, findings)]
    kinds = {f.kind for f in live}
    causes, ruled_out = _candidates(tree, ev, live, kinds)
    if not causes:  # a fallback branch only when nothing else explains the trouble
        causes = [Cause(b, tuple(_of(live, b.any + b.all)), 0, (), ())
                  for b in tree.branches if b.fallback and b.matches(kinds)][:1]
    causes = _ranked(causes)
    proposals, skipped = _propose(causes, live, ev, target, registry, now, incident_id)
    order = [b.name for b in tree.branches]
    taken = sorted((c.branch.name for c in causes), key=order.index)
    return Decision(tuple(proposals), tuple(skipped), tuple(taken), tuple(causes), tuple(ruled_out))


def _propose(causes: list[Cause], live: list[Finding], ev: Evidence, target: TargetSpec, registry: Registry,
             now: datetime, incident_id: str | None) -> tuple[list[Proposal], list[Skipped]]:
    """Each cause's steps, the best-supported cause first, alternatives last."""
    proposals: list[Proposal] = []
    skipped: list[Skipped] = []
    primary = next((c for c in causes if c.role == "primary" and c.branch.then == "stop"), None)
    for cause in sorted(causes, key=lambda c: (c.role != "primary", -c.score)):
        step_path = _path_step(cause, live)
        shared = _one_shared_cause(cause, primary, ev)
        if shared is not None:  # a deploy is not offered when every error names the dependency
            skipped += [Skipped(cause.branch.name, s.action, target.deployment or target.name, shared)
                        for s in cause.branch.propose]
            continue
        for step in cause.branch.propose:
            for subject, matched, why in _subjects(step, cause, ev, target):
                if any((p.action, p.subject) == (step.action, subject) for p in proposals):
                    continue  # a better-supported cause already proposes this mitigation
                reason = registry.action(step.action).unavailable_reason(target, subject)
                if reason is not None:
                    skipped.append(Skipped(cause.branch.name, step.action, subject, reason))
                    continue
                proposals.append(_proposal(step, subject, matched, why, cause, step_path, target, now,
                                           incident_id, _owners(live)))
    return proposals, skipped


def _one_shared_cause(cause: Cause, primary: Cause | None, ev: Evidence) -> str | None:
    """Why an alternative change is not offered: the best-supported cause is a dependency that
    every error line the app logs names (a shared-dependency outage: no error is left for the
    change to explain). None: offer it."""
    if primary is None or cause is primary or cause.role != "alternative" or cause.branch.before != "symptom":
        return None
    named = [f.subject for f in primary.findings
             if f.kind in DEPENDENCY_KINDS and ev.every_error_names(f.subject)]
    if not named:
        return None
    return (f"not offered: every error line names {named[0]}, which is failing: one shared cause, "
            f"not the {cause.branch.title}")


def _owners(live: Sequence[Finding]) -> list[Finding]:
    """Who manages the workload (a GitOps controller): the approver reads it on the proposal."""
    return [f for f in live if f.kind == "gitops_managed"]


def _of(findings: Sequence[Finding], kinds: Sequence[str]) -> list[Finding]:
    return [f for f in findings if f.kind in kinds]


def _candidates(tree: Tree, ev: Evidence, live: list[Finding],
                kinds: set[str]) -> tuple[list[Cause], list[str]]:
    causes: list[Cause] = []
    ruled_out: list[str] = []
    for branch in tree.branches:
        if branch.fallback or not branch.matches(kinds):
            continue
        cause = _weigh(branch, ev, _of(live, branch.cause_kinds))
        if isinstance(cause, Cause):
            causes.append(cause)
        else:
            ruled_out += [f"{branch.name}: {why}" for why in cause]
    return causes, ruled_out


def _weigh(branch: Branch, ev: Evidence, found: list[Finding]) -> Cause | list[str]:
    """The branch as a cause, or why the evidence rules it out."""
    exclude = branch.cause_kinds
    support: list[str] = []
    against: list[str] = []
    symptom = ev.symptom(exclude)
    if branch.before == "symptom" and symptom is not None:
        against += [ev.not_the_cause(c, symptom) for c in found if not ev.precedes(c, symptom)]
        found = [c for c in found if ev.precedes(c, symptom)]
        if not found:
            return against
        support.append(ev.came_before(max(found, key=lambda c: c.began), symptom))
    score = 0
    for rule in branch.evidence:
        if rule.required:
            checks = [(c, ev.check(rule.check, [c], exclude)) for c in found]
            against += [check.words for _, check in checks if not check.held]
            found = [c for c, check in checks if check.held]
            if not found:
                return against
        check = ev.check(rule.check, found, exclude)
        score += rule.weight if check.held else 0
        (support if check.held else against).append(check.words)
    return Cause(branch, tuple(found), score, tuple(support), tuple(against))


def _ranked(causes: list[Cause]) -> list[Cause]:
    """Competing causes best-supported first (tree order breaks ties); the rest are alternatives."""
    competing = sorted((c for c in causes if c.branch.then == "stop"), key=lambda c: -c.score)
    best = competing[0] if competing else None
    out = []
    for cause in causes:
        if cause.branch.then == "stop" and cause is not best and best is not None:
            note = (f"alternative: {best.branch.title} is better supported "
                    f"(evidence weight {best.score} vs {cause.score})")
            cause = replace(cause, role="alternative", against=(*cause.against, note))
        out.append(cause)
    return out


def _path_step(cause: Cause, live: Sequence[Finding]) -> DecisionStep:
    branch = cause.branch
    symptoms = [f for f in _of(live, branch.any + branch.all) if f.kind not in branch.cause_kinds]
    matched = [*cause.findings, *sorted(symptoms, key=lambda f: f.severity)]
    because = "; ".join(f.summary for f in matched[:3])
    return DecisionStep(branch.title, because, tuple(f"{f.kind}:{f.subject}" for f in matched))


Subject = tuple[str, list[Finding], str | None]  # who, the findings about it, why (a flag's match)


def _subjects(step: Step, cause: Cause, ev: Evidence, target: TargetSpec) -> list[Subject]:
    if step.per == "flag":  # only flags the failing evidence is about; the match is the rationale
        return [(flag.name, [], why) for flag in target.flags if (why := ev.flag_match(flag))]
    if step.per == "target":
        return [(target.deployment or target.name, list(cause.findings), None)]
    kinds = set(step.kinds or cause.branch.cause_kinds)
    by_subject: dict[str, list[Finding]] = {}
    for finding in cause.findings:
        if finding.kind in kinds:
            by_subject.setdefault(finding.subject, []).append(finding)
    return [(subject, found, None) for subject, found in by_subject.items()]


def _proposal(step: Step, subject: str, matched: list[Finding], why: str | None, cause: Cause,
              branch_step: DecisionStep, target: TargetSpec, now: datetime,
              incident_id: str | None, owners: Sequence[Finding] = ()) -> Proposal:
    params = dict(step.params)
    if step.param_from_kind and matched:
        params[step.param_from_kind] = sorted(matched, key=lambda f: f.severity)[0].kind
    path: tuple[DecisionStep, ...] = (branch_step,)
    subjects = {ref.split(":", 1)[1] for ref in branch_step.findings}
    if matched and step.per == "finding" and len(subjects) > 1:  # say which one this is about
        path += (DecisionStep(f"{step.action} {subject}", "; ".join(f.summary for f in matched[:2]),
                              tuple(f"{f.kind}:{f.subject}" for f in matched)),)
    shown, params = preview(step.action, subject, params, [*(matched or cause.findings), *owners])
    lead = "(alternative) " if cause.role == "alternative" else ""
    return Proposal(
        id=proposal_id(target.name, step.action, subject, incident_id or now.isoformat()),
        target=target.name, action=step.action, subject=subject, params=params, path=path,
        reason=f"{lead}{step.action} {subject} — {branch_step.branch}: {why or branch_step.because}",
        created_at=now, incident_id=incident_id, role=cause.role, preview=shown,
        support=(*([why] if why else []), *cause.support), against=cause.against,
    )


def proposal_id(target: str, action: str, subject: str, salt: str) -> str:
    """Deterministic per incident, so a replayed incident proposes the same ids."""
    digest = hashlib.sha256(f"{target}|{action}|{subject}|{salt}".encode()).hexdigest()
    return f"p-{digest[:8]}"


def bind_incident(proposal: Proposal, incident_id: str) -> Proposal:
    """The proposal as part of an incident: its id then depends on the incident, not the time."""
    return replace(proposal, incident_id=incident_id, id=proposal_id(
        proposal.target, proposal.action, proposal.subject, incident_id))
