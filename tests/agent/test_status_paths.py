"""Every path an incident takes, recorded through the real ledger (SQLite) and the lifecycle
functions the daemon calls, then told by the one function that derives status updates:
executed and verified, executed and failed, denied, expired, alerts resolved with no action,
and re-fired. Each asserts what a reader of the update would see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.incidents import lifecycle
from agent.incidents.intake import Webhook
from agent.incidents.status import status_update
from agent.ledger import IncidentRecord, Ledger, ProposalRecord
from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Proposal, TargetSpec, Verdict

T0 = datetime(2026, 11, 27, 2, 55, tzinfo=UTC)
TARGET = TargetSpec(name="checkout", deployment="checkout")


def _hook(status: str, *alerts: tuple[str, str]) -> Webhook:
    """A delivery of (alertname, status) alerts that all started at T0."""
    return Webhook.model_validate({
        "version": "4", "groupKey": "g", "status": status, "alerts": [
            {"status": s, "labels": {"alertname": name, "hemostat_target": "checkout", "severity": "critical"},
             "annotations": {"summary": f"checkout {name} (see http://grafana.internal/d/abc)"},
             "startsAt": T0.isoformat(), "fingerprint": name} for name, s in alerts]})


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return SqliteLedger(tmp_path / "ledger.db")


def _fire(ledger: Ledger, *names: str, at: datetime = T0) -> IncidentRecord:
    webhook = _hook("firing", *((n, "firing") for n in names))
    incident = lifecycle.on_alerts(ledger, webhook, TARGET, webhook.alerts, at).incident
    assert incident is not None
    ledger.append("triaged", "hemostat", at, incident_id=incident.id,
                  data={"severity": "SEV-2", "impact": ["40% of checkout's requests failing"]})
    return ledger.set_incident_status(incident.id, "identified", "hemostat", at)


def _resolve(ledger: Ledger, *names: str, at: datetime) -> None:
    webhook = _hook("resolved", *((n, "resolved") for n in names))
    lifecycle.on_alerts(ledger, webhook, TARGET, webhook.alerts, at)


def _propose(ledger: Ledger, incident: IncidentRecord, decision: str = "needs_approval",
             reasons: tuple[str, ...] = ("propose mode",)) -> ProposalRecord:
    proposal = Proposal("p-1", "checkout", "rollback", "checkout", {}, (DecisionStep("recent deploy", "x"),),
                        "rollback checkout", T0, incident_id=incident.id)
    verdict = Verdict(decision, "propose", reasons, approvals_required=1)  # type: ignore[arg-type]
    return ledger.add_proposal(proposal, verdict, T0, T0 + timedelta(minutes=30))


def _execute(ledger: Ledger, record: ProposalRecord, ok: bool, at: datetime, **data: Any) -> None:
    ledger.approve(record.id, "dana", at)
    ledger.claim_execution(record.id, "hemostat", at, {"summary": "undo to revision 4"})
    ledger.transition(record.id, "succeeded" if ok else "failed", "hemostat", at, data)
    lifecycle.after_execution(ledger, ledger.proposal(record.id), "hemostat", at)


def _update(ledger: Ledger, incident: IncidentRecord, at: datetime) -> Any:
    found = ledger.incident(incident.id)
    return status_update(found, ledger.events(incident_id=found.id), at, 30, {"incident_commander": "dana"})


def test_executed_and_verified_is_monitoring_with_the_mitigation_in_place(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    _execute(ledger, _propose(ledger, incident), True, T0 + timedelta(minutes=6), verified=True)
    upd = _update(ledger, incident, T0 + timedelta(minutes=7))
    assert upd.status == "Monitoring"
    assert upd.current == ("Mitigation in place: rollback checkout applied and verified at 03:01 UTC. "
                           "Watching that it holds.")


def test_executed_and_failed_says_no_mitigation_and_stays_investigating(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    _execute(ledger, _propose(ledger, incident), False, T0 + timedelta(minutes=6),
             error="no previous revision to roll back to")
    upd = _update(ledger, incident, T0 + timedelta(minutes=7))
    assert upd.status == "Investigating"
    assert upd.current == ("rollback checkout failed at 03:01 UTC: no previous revision to roll back to. "
                           "No mitigation is in place.")


def test_failed_rollback_then_resolved_alert_never_claims_a_mitigation(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    _execute(ledger, _propose(ledger, incident), False, T0 + timedelta(minutes=6), error="timed out")
    _resolve(ledger, "HighErrorRate", at=T0 + timedelta(minutes=9))
    upd = _update(ledger, incident, T0 + timedelta(minutes=10))
    assert upd.status == "Monitoring"
    assert "Mitigation in place" not in upd.current
    assert upd.current == ("All alerts have resolved. rollback checkout failed at 03:01 UTC: timed out. "
                           "No mitigation is in place.")


def test_denied_says_why_nothing_was_applied(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    _propose(ledger, incident, "deny", ("change freeze until 2026-11-28 00:00Z: release week",))
    upd = _update(ledger, incident, T0 + timedelta(minutes=3))
    assert upd.status == "Identified"
    assert upd.current == ("rollback checkout was not allowed by policy: change freeze until "
                           "2026-11-28 00:00Z: release week; no mitigation applied.")


def test_expired_says_it_was_never_applied(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    record = _propose(ledger, incident)
    ledger.transition(record.id, "expired", "hemostat", T0 + timedelta(minutes=31), {"reason": "no decision"})
    upd = _update(ledger, incident, T0 + timedelta(minutes=32))
    assert upd.current == "rollback checkout expired without being applied; no mitigation applied."


def test_alerts_resolved_with_no_action_is_monitoring_and_says_so(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate", "HighLatency")
    _resolve(ledger, "HighLatency", at=T0 + timedelta(minutes=4))
    half = _update(ledger, incident, T0 + timedelta(minutes=4))
    assert half.status == "Identified" and half.current == "1 of 2 alerts still firing."
    _resolve(ledger, "HighErrorRate", at=T0 + timedelta(minutes=8))
    upd = _update(ledger, incident, T0 + timedelta(minutes=9))
    assert upd.status == "Monitoring"
    assert upd.current == ("All alerts have resolved without any mitigation applied; "
                           "watching that it stays quiet.")


def test_refired_reopens_and_says_it_is_diagnosing_again(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    _resolve(ledger, "HighErrorRate", at=T0 + timedelta(minutes=8))
    assert ledger.incident(incident.id).status == "monitoring"
    again = _hook("firing", ("HighErrorRate", "firing"))
    again.alerts[0].startsAt = T0 + timedelta(minutes=12)
    outcome = lifecycle.on_alerts(ledger, again, TARGET, again.alerts, T0 + timedelta(minutes=12))
    assert outcome.diagnose and outcome.incident is not None
    upd = _update(ledger, incident, T0 + timedelta(minutes=12))
    assert upd.status == "Investigating"
    assert upd.current == "HighErrorRate fired again while monitoring at 03:07 UTC; diagnosing again."
    ledger.append("triaged", "hemostat", T0 + timedelta(minutes=13), incident_id=incident.id,
                  data={"headline": "SEV-2 checkout: 40% of requests failing", "severity": "SEV-2"})
    done = _update(ledger, incident, T0 + timedelta(minutes=13))  # the diagnosis finished: not stale
    assert done.current == "HighErrorRate fired again while monitoring at 03:07 UTC; diagnosed again at 03:08 UTC."


def test_the_update_is_for_people_outside_the_team(ledger: Ledger) -> None:
    incident = _fire(ledger, "HighErrorRate")
    upd = _update(ledger, incident, T0 + timedelta(minutes=1))
    assert "http" not in upd.text() and "grafana.internal" not in upd.title
    assert upd.headline().count("SEV-") == 1
    assert ("Incident commander", "dana") in upd.fields()
    assert upd.fields()[2] == ("Started", "2026-11-27 02:55 UTC")
