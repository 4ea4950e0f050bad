"""Proposals follow the evidence: a re-diagnosis on the same evidence proposes nothing new, new
evidence (other runaway sessions) makes a new proposal, and when the policy denies every
mitigation `investigate` still carries the evidence to a human. Recorded database trouble
(drills/database-issues.yaml) replayed into a real SQLite ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from agent.diagnosis.drill import load_scenario
from agent.diagnosis.registry import Registry
from agent.diagnosis.service import Diagnosis, evaluate
from agent.diagnosis.wiring import App, build_app
from agent.incidents.lifecycle import record_diagnosis
from agent.ledger.sqlite import SqliteLedger
from agent.model import Observation
from agent.model.config import Config

DRILL = Path(__file__).resolve().parents[2] / "drills" / "database-issues.yaml"


def _app(registry: Registry, tmp_path: Path, **policy: Any) -> App:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"actions": {"kill-queries": {}, "investigate": {}}, **policy}))
    return build_app(Config(policy=path), registry)


def _diagnose(app: App, pid_shift: int = 0) -> Diagnosis:
    scenario = load_scenario(DRILL)
    observations = [Observation(**o.model_dump()) for o in scenario.observations]
    if pid_shift:
        observations = [replace(o, data=_shift(o.data, pid_shift)) for o in observations]
    return evaluate(app, scenario.target, observations, scenario.started_at)


def _shift(data: dict[str, Any], by: int) -> dict[str, Any]:
    """The same trouble, from other sessions: every pid moved by `by`."""
    sessions = [{**s, "pid": s["pid"] + by, "blocked_by": [p + by for p in s.get("blocked_by", [])]}
                for s in data["sessions"]]
    return {**data, "sessions": sessions}


def _kill_proposals(ledger: SqliteLedger) -> list[Any]:
    return [r for r in ledger.proposals() if r.proposal.action == "kill-queries"]


def test_same_evidence_once_new_sessions_make_a_new_proposal(registry: Registry, tmp_path: Path) -> None:
    app, ledger = _app(registry, tmp_path), SqliteLedger(tmp_path / "ledger.db")
    first = _diagnose(app)
    incident, _ = record_diagnosis(app, ledger, first, "hemostat", first.started_at)
    assert incident is not None
    before = _kill_proposals(ledger)
    assert before
    again = _diagnose(app)
    record_diagnosis(app, ledger, again, "hemostat", again.started_at, incident)
    assert len(_kill_proposals(ledger)) == len(before)  # nothing new: nothing proposed again
    other = _diagnose(app, pid_shift=100000)
    record_diagnosis(app, ledger, other, "hemostat", other.started_at, incident)
    after = _kill_proposals(ledger)
    assert len(after) == 2 * len(before)  # another runaway session: proposed again, as new evidence
    assert {r.proposal.incident_id for r in after} == {incident.id}


def test_when_policy_denies_every_mitigation_investigate_carries_the_evidence(registry: Registry,
                                                                              tmp_path: Path) -> None:
    app = _app(registry, tmp_path, actions={"kill-queries": {"allowed": False}, "investigate": {}})
    ledger = SqliteLedger(tmp_path / "ledger.db")
    diagnosis = _diagnose(app)
    record_diagnosis(app, ledger, diagnosis, "hemostat", diagnosis.started_at)
    records = ledger.proposals()
    assert {r.state for r in records if r.proposal.action == "kill-queries"} == {"denied"}
    [investigate] = [r for r in records if r.proposal.action == "investigate"]
    assert investigate.state == "proposed"
    denied = investigate.proposal.path[-1]
    assert denied.branch == "denied by policy" and "policy does not allow kill-queries" in denied.because
    assert investigate.proposal.path[0].findings  # the evidence travels with it


def test_a_rediagnosis_with_worse_evidence_escalates_the_incident(registry: Registry, tmp_path: Path) -> None:
    from agent.incidents import lifecycle
    from agent.incidents.intake import Webhook

    app, ledger = _app(registry, tmp_path), SqliteLedger(tmp_path / "ledger.db")
    diagnosis = _diagnose(app)
    assert diagnosis.triage.severity is not None and diagnosis.triage.severity < 4
    hook = Webhook.model_validate({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": "SlowQueries", "severity": "info", "hemostat_target": "checkout"},
        "startsAt": diagnosis.started_at.isoformat()}]})
    opened = lifecycle.on_alerts(ledger, hook, load_scenario(DRILL).target, hook.alerts, diagnosis.started_at).incident
    assert opened is not None and opened.severity == 4
    ledger.set_incident_status(opened.id, "identified", "hemostat", diagnosis.started_at)
    after, changed = record_diagnosis(app, ledger, diagnosis, "hemostat", diagnosis.started_at, opened)
    assert changed and after is not None
    assert (after.status, after.severity) == ("identified", int(diagnosis.triage.severity))
    [raised] = [e for e in ledger.events(incident_id=opened.id) if e.data.get("reason") == "the new evidence is worse"]
    assert raised.data["severity"] == int(diagnosis.triage.severity)
