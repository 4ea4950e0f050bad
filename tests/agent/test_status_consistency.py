"""Incident state and words stay one story: after `revert` the incident no longer says a
mitigation is in place (monitoring becomes investigating, with the reason); a title never
carries a severity that the incident's own field may contradict. A real SQLite ledger and a
real (file-writing) plugin action."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from agent.incidents import lifecycle
from agent.ledger import IncidentRecord
from agent.model import DecisionStep, Proposal, Verdict
from tests.agent.test_executor import T0, _setup


def test_reverting_the_mitigation_takes_the_incident_out_of_monitoring(tmp_path: Path) -> None:
    executor, ledger = _setup(tmp_path, revert=False)
    ledger.open_incident(IncidentRecord("inc-9", "checkout", "checkout 5xx", "identified", 2, T0, T0), "test")
    proposal = Proposal(id="p-rev001", target="checkout", action="slow-marker", subject="checkout",
                        params={"file": str(tmp_path / "marker")}, path=(DecisionStep("e", "errors"),),
                        reason="mark", created_at=T0, incident_id="inc-9")
    ledger.add_proposal(proposal, Verdict("allow", "auto", ("test",), 0), T0, T0 + timedelta(minutes=30))
    assert asyncio.run(executor.run_once()) == ["p-rev001"]
    lifecycle.after_execution(ledger, ledger.proposal("p-rev001"), "hemostat", T0 + timedelta(minutes=1))
    assert ledger.incident("inc-9").status == "monitoring"
    assert asyncio.run(executor.revert("p-rev001", "the fix made it worse")).ok
    assert ledger.incident("inc-9").status == "investigating"
    [changed] = [e for e in ledger.events(incident_id="inc-9", types=("status_changed",))
                 if e.data.get("to") == "investigating"]
    assert changed.data["reason"] == "slow-marker checkout reverted: no mitigation in place"


def test_an_incident_opened_by_a_diagnosis_has_no_severity_frozen_in_its_title(tmp_path: Path) -> None:
    from agent.diagnosis.registry import Registry
    from agent.diagnosis.service import evaluate, record
    from agent.diagnosis.wiring import build_app
    from agent.ledger.sqlite import SqliteLedger
    from agent.model.config import Config
    from policies.model import bundled_policy_path
    from tests import corpus_playbook as playbook

    incident = playbook.bad_release()
    app = build_app(Config(), Registry.discover(), bundled_policy_path("default"))
    diagnosis = evaluate(app, incident.spec, incident.observations, incident.started_at)
    assert diagnosis.triage.headline.startswith("SEV-2 checkout: ")
    opened = record(app, SqliteLedger(tmp_path / "ledger.db"), diagnosis, "hemostat")
    assert opened is not None and opened.severity == 2
    assert opened.title == diagnosis.triage.headline.removeprefix("SEV-2 ")  # the severity is its own field
