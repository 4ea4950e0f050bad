"""Incident lifecycle on the ledger: alerts open, repeat and resolve incidents; diagnoses and
executions move them through investigating -> identified -> monitoring -> resolved.

Each function records what happened as events and returns what the daemon should do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent import service
from agent.intake import Alert, Webhook
from agent.ledger import IncidentRecord, Ledger
from agent.model import TargetSpec
from agent.service import Diagnosis, new_incident_id
from agent.wiring import App

ALERT_SEVERITY = {"critical": 1, "page": 1, "high": 2, "error": 2, "warning": 3, "info": 4}


def alert_severity(alerts: Sequence[Alert]) -> int:
    """SEV from the alerts' `severity` label (critical -> 1 ... info -> 4); 3 when unlabelled."""
    levels = [ALERT_SEVERITY.get(a.labels.get("severity", "").lower(), 3) for a in alerts]
    return min(levels, default=3)


def _alert_json(alert: Alert) -> dict[str, object]:
    return {"status": alert.status, "labels": alert.labels, "fingerprint": alert.fingerprint,
            "startsAt": alert.startsAt.isoformat(), "summary": alert.annotations.get("summary", "")}


def on_alerts(ledger: Ledger, webhook: Webhook, target: TargetSpec, alerts: Sequence[Alert],
              now: datetime, actor: str = "alertmanager") -> tuple[IncidentRecord | None, bool]:
    """Record alerts for one target. Returns the incident and whether it needs a diagnosis."""
    group_key = f"{webhook.groupKey}|{target.name}"
    # One open incident per target: a second alert group, or a sweep's incident, joins it.
    incident = ledger.find_open_incident(group_key=group_key) or ledger.find_open_incident(
        target=target.name)
    firing = [a for a in alerts if a.status == "firing"]
    if incident is None:
        if not firing:
            ledger.append("alert_resolved_unknown", actor, now,
                          data={"target": target.name, "alerts": [_alert_json(a) for a in alerts]})
            return None, False
        incident, opened = _open(ledger, webhook, target, firing, group_key, now, actor)
        if opened:
            return incident, True
    kind = "alert_repeated" if firing else "alert_resolved"
    ledger.append(kind, actor, now, incident_id=incident.id,
                  data={"alerts": [_alert_json(a) for a in alerts]})
    if webhook.status == "resolved" and incident.status != "monitoring":
        incident = ledger.set_incident_status(incident.id, "monitoring", actor, now,
                                              data={"reason": "all alerts resolved"})
    return incident, False


def _open(ledger: Ledger, webhook: Webhook, target: TargetSpec, firing: Sequence[Alert],
          group_key: str, now: datetime, actor: str) -> tuple[IncidentRecord, bool]:
    """Open the incident, unless another replica opened one for the target a moment ago."""
    started = min(a.startsAt for a in firing)
    title = firing[0].annotations.get("summary") or firing[0].labels.get("alertname", "alert firing")
    incident, opened = ledger.open_or_join(IncidentRecord(
        new_incident_id(now), target.name, title, "opened", alert_severity(firing), min(started, now),
        now, group_key, data={"alertname": firing[0].labels.get("alertname", "")}), actor)
    if opened:
        ledger.append("alert_fired", actor, now, incident_id=incident.id,
                      data={"alerts": [_alert_json(a) for a in firing], "receiver": webhook.receiver})
    return incident, opened


def on_unmatched(ledger: Ledger, alerts: Sequence[Alert], now: datetime) -> None:
    """Alerts for no configured target are recorded, never dropped."""
    ledger.append("alert_unmatched", "alertmanager", now,
                  data={"alerts": [_alert_json(a) for a in alerts]})


def after_diagnosis(ledger: Ledger, incident: IncidentRecord, diagnosis: Diagnosis, actor: str,
                    now: datetime) -> IncidentRecord:
    """investigating once triaged; identified when the tree found a mitigation."""
    severity = int(diagnosis.triage.severity) if diagnosis.triage.severity else incident.severity
    status = "identified" if diagnosis.decision.proposals else "investigating"
    if incident.status in ("monitoring", "resolved") or incident.status == status:
        return incident
    return ledger.set_incident_status(incident.id, status, actor, now,
                                      severity=min(severity, incident.severity),
                                      data={"headline": diagnosis.triage.headline})


def record_diagnosis(app: App, ledger: Ledger, diagnosis: Diagnosis, actor: str, now: datetime,
                     incident: IncidentRecord | None = None) -> tuple[IncidentRecord | None, bool]:
    """Record the diagnosis (opening or joining the target's incident when something is wrong)
    and move the incident along. Returns it, and whether its status changed (worth announcing)."""
    recorded = service.record(app, ledger, diagnosis, actor, incident)
    if recorded is None:
        return None, False
    after = after_diagnosis(ledger, recorded, diagnosis, actor, now)
    return after, after.status != recorded.status


def after_execution(ledger: Ledger, incident_id: str, succeeded: bool, actor: str,
                    now: datetime) -> IncidentRecord:
    """A verified mitigation moves the incident to monitoring; a failed one back to investigating."""
    incident = ledger.incident(incident_id)
    status = "monitoring" if succeeded else "investigating"
    if incident.status in (status, "resolved"):
        return incident
    return ledger.set_incident_status(incident_id, status, actor, now)
