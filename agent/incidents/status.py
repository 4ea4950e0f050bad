"""Status updates from the ledger: the playbook's template (Status, Impact, Started, Current
status, Next update, and the incident commander when there is one) and one readable line per
timeline event. Pure; `agent.incidents.notify` delivers them and `agent.incidents.postmortem` reuses the
event lines.

`status_update` is the one function that says where an incident stands: its label follows the
incident's status (which `agent.incidents.lifecycle` moves), its current-status sentence comes from
`agent.incidents.situation.current` over the same events. The text is for people outside the team: what
users see, since when, and when the next update comes; no internal URLs, DSNs or secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.incidents.situation import current, public
from agent.ledger import Event, IncidentRecord
from agent.model import truncate

STATUS_LABELS = {
    "opened": "Investigating", "triaged": "Investigating", "investigating": "Investigating",
    "identified": "Identified", "mitigating": "Identified", "monitoring": "Monitoring",
    "resolved": "Resolved",
}


def utc(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class StatusUpdate:
    """One status update, as the playbook's template has it."""

    incident_id: str
    target: str
    title: str
    severity: int
    status: str  # Investigating | Identified | Monitoring | Resolved
    impact: str
    started_at: datetime
    current: str
    next_update_at: datetime | None  # None once resolved
    at: datetime
    commander: str | None = None  # the incident commander, when one is named
    # (proposal id, "rollback checkout") still waiting for a human: Slack shows Approve/Reject
    pending: tuple[tuple[str, str], ...] = ()

    def fields(self) -> list[tuple[str, str]]:
        nxt = utc(self.next_update_at) if self.next_update_at else "none: resolved"
        lead = [("Incident commander", self.commander)] if self.commander else []
        return [("Status", self.status), ("Impact", self.impact), ("Started", utc(self.started_at)),
                ("Current status", self.current), *lead, ("Next update", nxt)]

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.fields())

    def headline(self) -> str:
        """'SEV-2 checkout: ...' with the current severity (titles may carry the first one)."""
        title = self.title.split(" ", 1)[-1] if self.title.startswith("SEV-") else self.title
        return f"SEV-{self.severity} {title}"

    def to_json(self) -> dict[str, Any]:
        return {
            "incident": self.incident_id, "target": self.target, "title": self.title,
            "severity": f"SEV-{self.severity}", "status": self.status, "impact": self.impact,
            "started_at": self.started_at.isoformat(), "current": self.current,
            "next_update_at": self.next_update_at.isoformat() if self.next_update_at else None,
            "at": self.at.isoformat(), "incident_commander": self.commander,
        }


def status_update(incident: IncidentRecord, events: Sequence[Event], now: datetime,
                  cadence_minutes: float, roles: Mapping[Any, str] | None = None) -> StatusUpdate:
    """The update to post now for `incident`, from its ledger events. Pure. `roles` are the
    configured defaults (hemostat.yaml `roles:`); an assignment in the ledger wins."""
    resolved = incident.status == "resolved"
    return StatusUpdate(
        incident.id, incident.target, public(incident.title), incident.severity,
        STATUS_LABELS.get(incident.status, "Investigating"), _impact(events),
        incident.opened_at, current(incident, events),
        None if resolved else now + timedelta(minutes=cadence_minutes), now,
        role_holders(events, roles).get("incident_commander"),
        () if resolved else pending_proposals(events),
    )


def pending_proposals(events: Sequence[Event]) -> tuple[tuple[str, str], ...]:
    """Proposals still waiting for approval: proposed, and no `proposal_<state>` event since."""
    waiting: dict[str, str] = {}
    for e in events:
        if e.type == "proposal" and e.proposal_id and e.data.get("state") == "proposed":
            waiting[e.proposal_id] = proposal_label(e.proposal_id, events)
        elif e.type.startswith("proposal_") and e.proposal_id:
            waiting.pop(e.proposal_id, None)
    return tuple(waiting.items())


def role_holders(events: Sequence[Event], defaults: Mapping[Any, str] | None = None) -> dict[str, str]:
    """Who holds each incident role: the configured defaults, then the ledger's assignments."""
    holders = dict(defaults or {})
    for e in events:
        if e.type == "role_assigned":
            holders[str(e.data.get("role"))] = str(e.data.get("name"))
    return holders


def _impact(events: Sequence[Event]) -> str:
    triaged = [e.data for e in events if e.type == "triaged"]
    if not triaged:
        return "being assessed"
    latest = triaged[-1]
    parts = latest.get("impact") or latest.get("broken", [])[:2] or [latest.get("headline", "")]
    text = public("; ".join(str(p) for p in parts if p)) or "being assessed"
    missing = [str(m.get("probe")) for m in latest.get("missing") or []]
    return text + (f" (diagnosis incomplete: {', '.join(missing)} could not look)" if missing else "")


def proposal_label(proposal_id: str | None, events: Sequence[Event]) -> str:
    """'rollback checkout' for a proposal id, from its `proposal` event."""
    for e in events:
        if e.type == "proposal" and e.proposal_id == proposal_id:
            return f"{e.data['proposal']['action']} {e.data['proposal']['subject']}"
    return proposal_id or "a mitigation"


def event_line(event: Event, events: Sequence[Event]) -> str | None:
    """One plain sentence for a meaningful timeline event; None for bookkeeping ones."""
    d, who = event.data, event.actor
    what = proposal_label(event.proposal_id, events)
    detail = d.get("detail") or d.get("error") or d.get("reason") or ""
    lines: dict[str, Callable[[], str | None]] = {
        "incident_opened": lambda: f"Incident opened: {d.get('title', '')}",
        "alert_fired": lambda: f"Alert fired: {_alerts(d)}",
        "triaged": lambda: f"Triaged: {d.get('headline', '')}",
        "status_changed": lambda: _status_changed(d),
        "role_assigned": lambda: f"{d.get('name')} is {str(d.get('role', '')).replace('_', ' ')}",
        "acknowledged": lambda: f"{who} acknowledged" + _why(d.get("note")),
        "diagnosis_requested": lambda: f"{who} asked the daemon for a diagnosis",
        "proposal": lambda: _proposed(what, d),
        "approval": lambda: f"{who} approved {what} ({d.get('approvals')}/{d.get('needed')})",
        "proposal_approved": lambda: f"{what} approved; it will be applied",
        "proposal_rejected": lambda: f"{what} rejected by {who}" + _why(detail),
        "proposal_expired": lambda: f"{what} expired without a decision",
        "execution_started": lambda: f"Applying {what}" + _why(d.get("plan", {}).get("summary")),
        "execution_finished": lambda: f"{what} {'applied' if d.get('ok') else 'failed'}" + _why(detail),
        "verification": lambda: f"{what} {'verified' if d.get('ok') else 'did not verify'}" + _why(detail),
        "proposal_succeeded": lambda: f"{what} succeeded" + _why(detail),
        "proposal_failed": lambda: f"{what} failed" + _why(detail),
        "proposal_reverted": lambda: f"{what} reverted" + _why(detail),
        "escalated": lambda: f"Escalated to a human: {detail}",
    }
    line = lines[event.type]() if event.type in lines else None
    return truncate(" ".join(line.split()), 200) if line else None


def _status_changed(data: dict[str, Any]) -> str | None:
    if data.get("from") == data.get("to"):
        # a record update that did not change the status; an escalation is worth a line
        return f"Severity raised to SEV-{data['severity']}" + _why(data.get("reason")) \
            if data.get("severity") else None
    why = data.get("reason") or data.get("note") or data.get("headline")
    return f"Status {data.get('from')} -> {data.get('to')}" + _why(why)


def _why(text: Any) -> str:
    return f": {text}" if text else ""


def _alerts(data: dict[str, Any]) -> str:
    alerts = data.get("alerts") or [{}]
    return ", ".join(a.get("summary") or a.get("labels", {}).get("alertname", "alert") for a in alerts)


def _proposed(what: str, data: dict[str, Any]) -> str:
    decision = data.get("verdict", {}).get("decision", "")
    then = {"allow": "policy allows it", "needs_approval": "awaiting approval",
            "deny": "denied by policy"}.get(decision, decision)
    path = data.get("proposal", {}).get("path") or [{}]
    return f"Proposed {what} ({then})" + _why(path[0].get("because"))
