"""The diagnosis pipeline: collect (I/O) -> analyze -> triage -> decide -> gate (pure),
then record it in the ledger. `diagnose` and the daemon's sweeps and alerts all go through here;
drills call `evaluate` on recorded observations.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from agent.diagnosis.decide import Decision, bind_incident, decide, proposal_id
from agent.diagnosis.evidence import CHANGE_KINDS, dated_by_history, with_history_baselines
from agent.diagnosis.runner import analyze_all, collect_all
from agent.diagnosis.triage import Triage, triage
from agent.diagnosis.wiring import App
from agent.ledger import IncidentRecord, Ledger
from agent.model import DecisionStep, Finding, Observation, Proposal, TargetSpec, Verdict
from agent.model.context import ProbeContext, utcnow
from policies.gate import PastExecution

EXECUTED_STATES = ("executing", "succeeded", "failed", "reverted")


@dataclass(frozen=True)
class Diagnosis:
    target: str
    started_at: datetime
    observations: tuple[Observation, ...]
    findings: tuple[Finding, ...]
    triage: Triage
    decision: Decision
    verdicts: dict[str, Verdict]
    breakers: dict[str, str]
    triggered_by: str | None = None  # the human who ran `diagnose`: a proposer of its proposals

    def to_json(self) -> dict[str, Any]:
        t = self.triage.to_json()
        return {
            "target": self.target, "started_at": self.started_at.isoformat(),
            "severity": t["severity"], "triage": t, "branches": list(self.decision.branches),
            "findings": [f.to_json() for f in self.findings],
            "proposals": [{**p.to_json(), "path": [s.to_json() for s in p.path],
                           "verdict": self.verdicts[p.id].to_json()}
                          for p in self.decision.proposals],
            "skipped": [s.__dict__ for s in self.decision.skipped],
            "complete": self.triage.complete, "missing": [g.to_json() for g in self.triage.missing],
            "ruled_out": list(self.decision.ruled_out),
            "probes": [{"probe": o.probe, "ok": o.ok, "error": o.error,
                        "duration_s": round(o.duration_s, 3)} for o in self.observations],
            "breakers": self.breakers,
        }


def probe_context(app: App, alerts: Sequence[dict[str, Any]] = ()) -> ProbeContext:
    return ProbeContext(breakers=app.breakers, timeout_s=app.config.probe_timeout_s,
                        kube=app.kube_provider(), kube_endpoint=app.kube_endpoint_provider(),
                        alerts=tuple(alerts))


async def diagnose(app: App, target: TargetSpec, started_at: datetime | None = None,
                   history: Sequence[PastExecution] = (), incident_id: str | None = None,
                   alerts: Sequence[dict[str, Any]] = (), past: Sequence[Finding] = ()) -> Diagnosis:
    """Probe, then evaluate. `alerts` (Alertmanager JSON) are what fired, for probes that
    re-check an alert's own expression."""
    ctx = probe_context(app, alerts)
    observations = await collect_all(target, app.registry, ctx)
    now = started_at or utcnow()
    return evaluate(app, target, observations, now, history, incident_id, past)


def evaluate(app: App, target: TargetSpec, observations: Sequence[Observation], now: datetime,
             history: Sequence[PastExecution] = (), incident_id: str | None = None,
             past: Sequence[Finding] = ()) -> Diagnosis:
    """Pure: everything after the probes, from recorded observations. `past`: the findings of
    the target's open incident's earlier sweeps, which date trouble whose evidence has no clock."""
    findings = with_history_baselines(dated_by_history(analyze_all(observations, target, app.registry, now),
                                                       past))
    decision = decide(findings, target, app.tree, app.registry, now, incident_id)
    tri = triage(findings, target.name, now, cause_onset(decision), target.thresholds.look_again_s)
    severity = int(tri.severity) if tri.severity else 4
    verdicts = {p.id: _gated(app, p, history, now, severity) for p in decision.proposals}
    return Diagnosis(target.name, now, tuple(observations), tuple(findings), tri, decision,
                     verdicts, app.breakers.states())


def cause_onset(decision: Decision) -> datetime | None:
    """When the best-supported cause began, by its own evidence; a change is not the trouble
    itself (the symptom it caused is), so a change-caused incident answers None here."""
    onsets = [f.onset for c in decision.causes if c.role == "primary"
              for f in c.findings if f.onset is not None and f.kind not in CHANGE_KINDS]
    return min(onsets, default=None)


def _gated(app: App, proposal: Proposal, history: Sequence[PastExecution], now: datetime,
           severity: int) -> Verdict:
    """The policy's verdict; an alternative cause's mitigation never runs without a human."""
    verdict = app.gate.evaluate(proposal, history, now, severity)
    if proposal.role == "alternative" and verdict.decision == "allow" and not verdict.dry_run:
        return replace(verdict, decision="needs_approval",
                       approvals_required=max(1, verdict.approvals_required),
                       reasons=(*verdict.reasons, "an alternative cause: a human picks between causes"))
    return verdict


def past_findings(ledger: Ledger, target: str) -> list[Finding]:
    """The findings recorded so far in the target's open incident (its earlier sweeps)."""
    incident = ledger.find_open_incident(target=target)
    if incident is None:
        return []
    return [Finding.from_json(e.data) for e in ledger.events(incident_id=incident.id, types=("finding",))]


def history_from(ledger: Ledger, app: App, now: datetime | None = None) -> list[PastExecution]:
    """Executions the gate weighs for cooldowns and the rate limit: only those inside the
    longest window the policy looks at, so a long ledger does not slow every sweep down."""
    since = (now or utcnow()) - _lookback(app)
    out = []
    for record in ledger.proposals(states=EXECUTED_STATES):
        if record.updated_at < since:  # updated_at is never earlier than the execution
            continue
        p = record.proposal
        started = [e.at for e in ledger.events(proposal_id=p.id) if e.type == "execution_started"]
        out.append(PastExecution(p.action, p.target, p.subject, started[0] if started else record.updated_at,
                                 took_effect=record.state != "failed"))
    return out


def _lookback(app: App) -> timedelta:
    policy = app.policy
    cooldowns = [r.cooldown_minutes or 0 for r in policy.actions.values()]
    return timedelta(minutes=max([policy.cooldown_minutes, policy.rate_limit.per_minutes, *cooldowns]))


def new_incident_id(now: datetime) -> str:
    return f"inc-{now:%Y%m%d-%H%M}-{secrets.token_hex(4)}"  # 1,000 a minute must not collide


def untitled(headline: str) -> str:
    """The headline as an incident title: without its `SEV-n` label, which is the incident's own
    field and changes as evidence comes in (a title frozen at SEV-2 beside a SEV-1 contradicts)."""
    return re.sub(r"^SEV-\d\s+", "", headline)


def record(app: App, ledger: Ledger, diagnosis: Diagnosis, actor: str,
           incident: IncidentRecord | None = None) -> IncidentRecord | None:
    """Write the diagnosis to the ledger: the incident (opened or reused), its findings, triage,
    and each proposal with its verdict. Returns the incident, or None when nothing is wrong."""
    tri = diagnosis.triage
    if tri.severity is None and incident is None:
        return None
    incident = incident or ledger.find_open_incident(target=diagnosis.target) or ledger.open_or_join(
        IncidentRecord(new_incident_id(diagnosis.started_at), diagnosis.target, untitled(tri.headline),
                       "opened", int(tri.severity or 4), diagnosis.started_at, diagnosis.started_at),
        actor,
    )[0]
    _record_findings(ledger, diagnosis, incident, actor)
    _record_proposals(app, ledger, diagnosis, incident)
    return incident


def _record_findings(ledger: Ledger, diagnosis: Diagnosis, incident: IncidentRecord, actor: str) -> None:
    at = diagnosis.started_at
    # What the probes saw, so `postmortem --record` can turn the incident into a drill.
    ledger.append("observations", actor, at, incident_id=incident.id,
                  data={"observations": [o.to_json() for o in diagnosis.observations]})
    for finding in diagnosis.findings:
        ledger.append("finding", actor, at, incident_id=incident.id, data=finding.to_json())
    ledger.append("triaged", actor, at, incident_id=incident.id,
                  data={**diagnosis.triage.to_json(), "branches": list(diagnosis.decision.branches)})


def _record_proposals(app: App, ledger: Ledger, diagnosis: Diagnosis, incident: IncidentRecord) -> None:
    """Each proposal once per incident and evidence: the same mitigation on the same evidence is
    not proposed again, but new evidence (another reason, other sessions) makes a new proposal.
    When the policy denies every one, `investigate` still hands a human the evidence."""
    ttl = timedelta(minutes=min(app.policy.proposal_ttl_minutes, app.config.executor.proposal_ttl_minutes))
    existing = {r.id for r in ledger.proposals(incident_id=incident.id)}
    gated = [(p, diagnosis.verdicts[p.id]) for p in diagnosis.decision.proposals]
    all_denied = gated and all(v.decision == "deny" for _, v in gated)
    if all_denied and not any(p.action == "investigate" for p, _ in gated):
        gated.append(_investigate_instead(app, diagnosis, gated))
    for proposal, verdict in gated:
        bound = replace(bind_incident(proposal, incident.id), triggered_by=diagnosis.triggered_by)
        salt = f"{incident.id}|{evidence_key(proposal, diagnosis)}"
        bound = replace(bound, id=proposal_id(bound.target, bound.action, bound.subject, salt))
        if bound.id in existing:
            continue
        existing.add(bound.id)
        ledger.add_proposal(bound, verdict, diagnosis.started_at, diagnosis.started_at + ttl)


def evidence_key(proposal: Proposal, diagnosis: Diagnosis) -> str:
    """What the proposal rests on: its findings (kind:subject), parameters and the sessions
    (pids) those findings name. The same key is the same proposal."""
    refs = sorted({ref for step in proposal.path for ref in step.findings})
    pids = sorted({str(pid) for f in diagnosis.findings if f"{f.kind}:{f.subject}" in refs
                   for pid in f.facts.get("pids", ())})
    return json.dumps([refs, proposal.params, pids], sort_keys=True, default=str)


def _investigate_instead(app: App, diagnosis: Diagnosis,
                         denied: list[tuple[Proposal, Verdict]]) -> tuple[Proposal, Verdict]:
    first = denied[0][0]
    why = "; ".join(f"{p.action} {p.subject}: {v.reasons[0] if v.reasons else 'denied'}" for p, v in denied)
    path = (*first.path, DecisionStep("denied by policy", why))
    pid = proposal_id(first.target, "investigate", first.subject, diagnosis.started_at.isoformat())
    proposal = Proposal(pid, first.target, "investigate", first.subject, {}, path,
                        f"investigate {first.subject}: every mitigation was denied ({why})",
                        diagnosis.started_at, incident_id=first.incident_id)
    return proposal, app.gate.evaluate(proposal, [], diagnosis.started_at)
