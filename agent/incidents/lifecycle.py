"""Incident lifecycle on the ledger: alerts open, join, resolve and re-open incidents; diagnoses
and executions move them through investigating -> identified -> monitoring -> resolved.

An incident tracks each alert that joined it by fingerprint (from its alert events). It leaves
investigating/identified for monitoring only when every alert has resolved or a verified
mitigation is in place; a fresh firing alert while monitoring re-opens it and asks for a new
diagnosis.

Each function records what happened as events and returns what the daemon should do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from agent.diagnosis import service
from agent.diagnosis.service import Diagnosis, new_incident_id
from agent.diagnosis.wiring import App
from agent.incidents.intake import Alert, Webhook
from agent.incidents.situation import firing, tracked_alerts
from agent.ledger import IncidentRecord, Ledger, ProposalRecord
from agent.model import TargetSpec, truncate
from agent.model.quietlog import emit

ACTIVE = ("opened", "triaged", "investigating", "identified", "mitigating")  # before monitoring
SUMMARY_CHARS = 500  # of an alert's summary kept in the ledger: a 600 KB annotation is not evidence
ALERT_SEVERITY = {"critical": 1, "page": 1, "high": 2, "error": 2, "warning": 3, "info": 4}


def alert_severity(alerts: Sequence[Alert]) -> int:
    """SEV from the alerts' `severity` label (critical -> 1 ... info -> 4); 3 when unlabelled."""
    levels = [ALERT_SEVERITY.get(a.labels.get("severity", "").lower(), 3) for a in alerts]
    return min(levels, default=3)


def _alert_json(alert: Alert) -> dict[str, object]:
    return {"status": alert.status, "labels": alert.labels, "fingerprint": alert.fingerprint,
            "startsAt": alert.startsAt.isoformat(),
            "endsAt": alert.endsAt.isoformat() if alert.endsAt else None,
            "summary": truncate(alert.annotations.get("summary", ""), SUMMARY_CHARS)}


ALERT_EVENTS = ("alert_fired", "alert_resolved")  # what tracked_alerts reads, filtered in SQL


def tracked_for(ledger: Ledger, incident_id: str) -> dict[str, dict[str, Any]]:
    """The incident's alerts as last delivered, reading only its alert events."""
    return tracked_alerts(ledger.events(incident_id=incident_id, types=ALERT_EVENTS))


def _delivery_key(alert: dict[str, Any]) -> tuple[str, str, str] | None:
    return (alert["fingerprint"], alert["status"], alert["startsAt"]) if alert else None


@dataclass(frozen=True)
class AlertsOutcome:
    """What one webhook did to one target's incident."""

    incident: IncidentRecord | None
    diagnose: bool = False  # opened, or re-opened by a fresh firing alert: diagnose (again)
    recorded: int = 0  # alerts that were news
    duplicates: int = 0  # re-deliveries of what the ledger already holds


def on_alerts(ledger: Ledger, webhook: Webhook, target: TargetSpec, alerts: Sequence[Alert],
              now: datetime, actor: str = "alertmanager") -> AlertsOutcome:
    """Record one delivery's alerts for one target, once each: a re-delivery (Alertmanager's
    repeat_interval, a retry, an HA twin) of the same fingerprint, status and startsAt is
    acknowledged and not recorded again. Moves the incident when its alerts say so."""
    incident = ledger.find_open_incident(target=target.name)
    tracked = tracked_for(ledger, incident.id) if incident else {}
    fresh = [a for a in alerts if _delivery_key(tracked.get(a.fingerprint, {})) != a.key]
    dups = len(alerts) - len(fresh)
    new_firing = [a for a in fresh if a.status == "firing"]
    if not fresh:
        return AlertsOutcome(incident, duplicates=dups)
    if incident is None:
        if not new_firing:
            ledger.append("alert_resolved_unknown", actor, now,
                          data={"target": target.name, "alerts": [_alert_json(a) for a in fresh]})
            return AlertsOutcome(None, recorded=len(fresh), duplicates=dups)
        incident, opened = _open(ledger, webhook, target, new_firing, now, actor)
        if opened:
            _record(ledger, webhook, incident, [a for a in fresh if a.status == "resolved"], now, actor)
            return AlertsOutcome(incident, diagnose=True, recorded=len(fresh), duplicates=dups)
        tracked = tracked_for(ledger, incident.id)  # a racer's incident
        fresh = [a for a in fresh if _delivery_key(tracked.get(a.fingerprint, {})) != a.key]
    _record(ledger, webhook, incident, fresh, now, actor)
    emit("hemostat.incidents", "info", "incident joined", incident_id=incident.id, target=target.name,
         firing=len(new_firing), resolved=len(fresh) - len(new_firing), status=incident.status)
    tracked.update({a.fingerprint: _alert_json(a) for a in fresh})
    incident, diagnose = _move(ledger, incident, tracked, new_firing, now, actor)
    return AlertsOutcome(incident, diagnose, len(fresh), dups)


def _record(ledger: Ledger, webhook: Webhook, incident: IncidentRecord, alerts: Sequence[Alert],
            now: datetime, actor: str) -> None:
    for status in ("firing", "resolved"):
        these = [_alert_json(a) for a in alerts if a.status == status]
        if these:
            ledger.append("alert_fired" if status == "firing" else "alert_resolved", actor, now,
                          incident_id=incident.id, data=_delivery(webhook, these))


def _delivery(webhook: Webhook, alerts: list[dict[str, object]]) -> dict[str, object]:
    """The event data of a delivery; `truncated` says Alertmanager left alerts out (max_alerts)."""
    return {"alerts": alerts, "receiver": webhook.receiver, "group_key": webhook.groupKey,
            "source": webhook.source, "truncated": webhook.truncatedAlerts}


def _move(ledger: Ledger, incident: IncidentRecord, tracked: dict[str, dict[str, Any]],
          new_firing: Sequence[Alert], now: datetime, actor: str) -> tuple[IncidentRecord, bool]:
    """Re-open on a fresh firing alert while monitoring (diagnose again, escalate if worse);
    escalate on a worse one joining; to monitoring once every alert has resolved."""
    worse = min(incident.severity, alert_severity(new_firing)) if new_firing else incident.severity
    if new_firing and incident.status == "monitoring":
        names = ", ".join(sorted({a.labels.get("alertname", "alert") for a in new_firing}))
        return ledger.set_incident_status(
            incident.id, "investigating", actor, now, severity=worse,
            data={"reason": f"{names} fired again while monitoring", "cause": "refired"}), True
    if new_firing and worse < incident.severity:
        return ledger.set_incident_status(incident.id, incident.status, actor, now, severity=worse,
                                          data={"reason": "a more severe alert joined"}), False
    if not firing(tracked) and incident.status in ACTIVE:
        return ledger.set_incident_status(incident.id, "monitoring", actor, now, data={
            "reason": "every alert has resolved", "cause": "alerts_resolved"}), False
    return incident, False


def _open(ledger: Ledger, webhook: Webhook, target: TargetSpec, firing: Sequence[Alert],
          now: datetime, actor: str) -> tuple[IncidentRecord, bool]:
    """Open the incident, unless another replica opened one for the target a moment ago.
    It starts when its earliest alert started (never in the future)."""
    started = min(min(a.startsAt for a in firing), now)
    summary = firing[0].annotations.get("summary") or firing[0].labels.get("alertname", "alert firing")
    title = truncate(summary, SUMMARY_CHARS)
    incident, opened = ledger.open_or_join(IncidentRecord(
        new_incident_id(now), target.name, title, "opened", alert_severity(firing), started,
        now, f"{webhook.groupKey}|{target.name}",
        data={"alertname": firing[0].labels.get("alertname", "")}), actor)
    if opened:
        ledger.append("alert_fired", actor, now, incident_id=incident.id,
                      data=_delivery(webhook, [_alert_json(a) for a in firing]))
    return incident, opened


def on_unmatched(ledger: Ledger, webhook: Webhook, alerts: Sequence[Alert], now: datetime) -> None:
    """Alerts for no configured target are recorded, never dropped."""
    ledger.append("alert_unmatched", webhook.source, now,
                  data=_delivery(webhook, [_alert_json(a) for a in alerts]))


def after_diagnosis(ledger: Ledger, incident: IncidentRecord, diagnosis: Diagnosis, actor: str,
                    now: datetime) -> IncidentRecord:
    """investigating once triaged; identified when the tree found a mitigation; and the
    severity escalated whenever the new evidence is worse, whatever the status."""
    current = ledger.incident(incident.id)  # alerts may have moved it while the probes ran
    severity = int(diagnosis.triage.severity) if diagnosis.triage.severity else current.severity
    status = "identified" if diagnosis.decision.proposals else "investigating"
    if current.status == "resolved":
        return current
    if current.status == "monitoring" or current.status == status:
        if severity >= current.severity:
            return current
        return ledger.set_incident_status(current.id, current.status, actor, now, severity=severity,
                                          data={"reason": "the new evidence is worse",
                                                "headline": diagnosis.triage.headline})
    return ledger.set_incident_status(current.id, status, actor, now,
                                      severity=min(severity, current.severity),
                                      data={"headline": diagnosis.triage.headline})


def record_diagnosis(app: App, ledger: Ledger, diagnosis: Diagnosis, actor: str, now: datetime,
                     incident: IncidentRecord | None = None) -> tuple[IncidentRecord | None, bool]:
    """Record the diagnosis (opening or joining the target's incident when something is wrong)
    and move the incident along. Returns it, and whether its status or severity changed (worth
    announcing)."""
    recorded = service.record(app, ledger, diagnosis, actor, incident)
    if recorded is None:
        return None, False
    before = ledger.incident(recorded.id)
    after = after_diagnosis(ledger, before, diagnosis, actor, now)
    return after, (after.status, after.severity) != (before.status, before.severity)


def mitigates(plan: dict[str, Any] | None) -> bool:
    """A plan that touches nothing (investigate) hands work to a human; it mitigates nothing."""
    return bool((plan or {}).get("touches", True))  # no plan at all: a mitigation that failed early


def after_execution(ledger: Ledger, record: ProposalRecord, actor: str, now: datetime) -> IncidentRecord:
    """A verified mitigation moves the incident to monitoring. A failed (or unverified) one
    leaves it investigating, unless its alerts have all resolved (then it stays monitoring,
    and the status update says no mitigation is in place)."""
    assert record.proposal.incident_id is not None
    incident = ledger.incident(record.proposal.incident_id)
    verified = record.state == "succeeded" and not record.verdict.dry_run
    if record.verdict.dry_run or incident.status == "resolved" or not mitigates(record.plan):
        return incident
    if verified:
        status, cause = "monitoring", "mitigation_verified"
    else:
        tracked = tracked_for(ledger, incident.id)
        quiet = bool(tracked) and not firing(tracked)
        status, cause = ("monitoring" if quiet else "investigating"), "mitigation_failed"
    if incident.status == status:
        return incident
    what = f"{record.proposal.action} {record.proposal.subject}"
    reason = f"{what} applied and verified" if verified else f"{what} did not work"
    return ledger.set_incident_status(incident.id, status, actor, now,
                                      data={"reason": reason, "cause": cause})


def record_asked(app: App, ledger: Ledger, diagnosis: Diagnosis,
                 asked_by: str) -> tuple[dict[str, Any], IncidentRecord | None]:
    """A diagnosis someone asked for (`hemostat diagnose`, here or through the daemon), recorded
    with them as a proposer of its proposals; its JSON with the ledger's ids, which `approve`
    takes, and the incident it opened or joined (None when nothing was wrong)."""
    diagnosis = replace(diagnosis, triggered_by=asked_by)
    incident, _ = record_diagnosis(app, ledger, diagnosis, app.config.identity, diagnosis.started_at)
    doc = {**diagnosis.to_json(), "incident": incident.id if incident else None}
    if incident is not None:
        bound = {(r.proposal.action, r.proposal.subject): r
                 for r in ledger.proposals(incident_id=incident.id)}
        doc["proposals"] = [_with_id(p, bound.get((p["action"], p["subject"]))) for p in doc["proposals"]]
    return doc, incident


def _with_id(proposal: dict[str, Any], record: ProposalRecord | None) -> dict[str, Any]:
    return {**proposal, "id": record.id, "state": record.state} if record else proposal
