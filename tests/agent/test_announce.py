"""Status updates read only the event types they use: the same update as from the whole
timeline, without a long incident's observations and notifications; coalesced per incident."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.incidents.status import StatusUpdate, status_update
from agent.ledger import IncidentRecord
from agent.ledger.sqlite import SqliteLedger
from agent.server.announce import Announcer, status_events

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _long_timeline(ledger: SqliteLedger) -> str:
    incident = ledger.open_incident(IncidentRecord("inc-1", "checkout", "errors", "opened", 2, T0, T0), "hemostat")
    at = iter(T0 + timedelta(seconds=i) for i in range(10_000))
    ledger.append("alert_fired", "alertmanager", next(at), incident_id=incident.id,
                  data={"alerts": [{"summary": "checkout error rate above 5%"}]})
    for i in range(300):  # sweeps: observations and notifications pile up between the lines shown
        ledger.append("observations", "hemostat", next(at), incident_id=incident.id, data={"blob": "x" * 2000})
        ledger.append("notification", "hemostat", next(at), incident_id=incident.id, data={"ok": True})
        if i % 100 == 0:
            ledger.append("triaged", "hemostat", next(at), incident_id=incident.id,
                          data={"headline": f"errors {i}", "impact": [f"checkout failing ({i})"]})
    proposal = {"action": "rollback", "subject": "deployment/checkout", "path": [{"because": "deploy 3f2a9c"}]}
    ledger.append("proposal", "hemostat", next(at), incident_id=incident.id, proposal_id="p-1",
                  data={"proposal": proposal, "verdict": {"decision": "needs_approval"}})
    for _ in range(20):
        ledger.append("observations", "hemostat", next(at), incident_id=incident.id, data={"blob": "y"})
    ledger.append("approval", "dana", next(at), incident_id=incident.id, proposal_id="p-1",
                  data={"approvals": 1, "needed": 1})
    ledger.append("role_assigned", "dana", next(at), incident_id=incident.id,
                  data={"role": "incident_commander", "name": "lee"})
    ledger.append("proposal_approved", "dana", next(at), incident_id=incident.id, proposal_id="p-1",
                  data={"from": "proposed"})
    ledger.append("alert_resolved", "alertmanager", next(at), incident_id=incident.id,
                  data={"alerts": [{"fingerprint": "f1", "status": "resolved", "summary": "x"}]})
    ledger.set_incident_status(incident.id, "identified", "hemostat", next(at))
    return incident.id


def test_the_update_from_the_latest_events_is_the_update_from_the_whole_timeline(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    incident_id = _long_timeline(ledger)
    incident, now = ledger.incident(incident_id), T0 + timedelta(hours=1)
    read = status_events(ledger, incident_id)
    everything = ledger.events(incident_id=incident_id)
    assert len(read) < len(everything) // 20
    roles = {"incident_commander": "sam"}
    update = status_update(incident, read, now, 30, roles)
    assert update == status_update(incident, everything, now, 30, roles)
    assert update.impact == "checkout failing (200)" and update.commander == "lee"
    assert "rollback deployment/checkout is approved" in update.current


def test_a_flood_of_requests_for_one_incident_renders_it_once_with_the_latest_state(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    incident_id = _long_timeline(ledger)
    sent: list[StatusUpdate] = []

    async def flood() -> None:
        announcer = Announcer(ledger, sent.append, lambda: T0, 30)
        for _ in range(2400):
            announcer.request(incident_id)
        await announcer.drain(timeout_s=10)

    asyncio.run(flood())
    assert len(sent) == 1 and sent[0].status == "Identified"
