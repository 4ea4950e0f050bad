"""Where an incident stands, derived from its ledger events alone: which alerts still fire, what
became of its mitigations, and the one sentence a status update says about it. Pure.

`agent.incidents.status` builds status updates from `current()`; `agent.incidents.lifecycle` moves
incidents using
`tracked_alerts()`. Both read the same events, so the status never says other than the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.ledger import Event, IncidentRecord
from agent.model import redact

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)


def public(text: str) -> str:
    """Text a communications person can post: no URLs (internal hosts, DSNs), no secrets."""
    return " ".join(_URL.sub("", redact(text)).split())


def tracked_alerts(events: Sequence[Event]) -> dict[str, dict[str, Any]]:
    """Each alert (by fingerprint) that joined the incident, as last delivered."""
    out: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.type in ("alert_fired", "alert_resolved"):
            out.update({a["fingerprint"]: a for a in event.data.get("alerts", ()) if "fingerprint" in a})
    return out


def firing(tracked: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in tracked.values() if a.get("status") == "firing"]


@dataclass(frozen=True)
class Outcome:
    """The latest thing that happened to one of the incident's mitigations."""

    state: str  # awaiting | approved | denied | rejected | expired | verified | failed | reverted
    what: str
    at: datetime
    why: str = ""
    who: str = ""


_OUTCOMES = {"proposal_approved": "approved", "proposal_rejected": "rejected", "proposal_expired": "expired",
             "proposal_succeeded": "verified", "proposal_failed": "failed", "proposal_reverted": "reverted"}
_PENDING = ("awaiting", "approved")  # moot once the incident is resolved
_PROPOSED = {"needs_approval": "awaiting", "allow": "approved", "deny": "denied"}


def outcomes(events: Sequence[Event]) -> list[Outcome]:
    """Every mitigation step in order (dry runs and hand-offs to a human are left out)."""
    labels = {e.proposal_id: f"{e.data['proposal']['action']} {e.data['proposal']['subject']}"
              for e in events if e.type == "proposal"}
    dry = {e.proposal_id for e in events if e.type == "execution_finished" and e.data.get("dry_run")}
    dry |= {e.proposal_id for e in events  # a plan that touches nothing (investigate) mitigates nothing
            if e.type == "execution_started" and not e.data.get("plan", {}).get("touches", True)}
    out = []
    for e in events:
        if e.proposal_id in dry:
            continue
        state = _PROPOSED.get(e.data.get("verdict", {}).get("decision")) if e.type == "proposal" \
            else _OUTCOMES.get(e.type)
        if state is not None:
            why = e.data.get("error") or e.data.get("detail") or e.data.get("reason") \
                or "; ".join(e.data.get("verdict", {}).get("reasons", ())) or ""
            out.append(Outcome(state, labels.get(e.proposal_id, "a mitigation"), e.at, str(why), e.actor))
    return out


def in_place(steps: Sequence[Outcome]) -> Outcome | None:
    """The verified mitigation still in place (not reverted since), if any."""
    live: dict[str, Outcome] = {}
    for step in steps:
        if step.state == "verified":
            live[step.what] = step
        elif step.state in ("reverted", "failed"):
            live.pop(step.what, None)
    return max(live.values(), key=lambda s: s.at) if live else None


def _hm(at: datetime) -> str:
    return f"{at:%H:%M} UTC"


def _step_sentence(step: Outcome) -> str:
    why = f": {step.why}" if step.why else ""
    return {
        "awaiting": f"{step.what} is proposed and awaiting approval.",
        "approved": f"{step.what} is approved and about to be applied.",
        "denied": f"{step.what} was not allowed by policy{why}; no mitigation applied.",
        "rejected": f"{step.what} was rejected by {step.who}{why}; no mitigation applied.",
        "expired": f"{step.what} expired without being applied; no mitigation applied.",
        "failed": f"{step.what} failed at {_hm(step.at)}{why}. No mitigation is in place.",
        "reverted": f"{step.what} was reverted at {_hm(step.at)}{why}.",
        "verified": f"Mitigation in place: {step.what} applied and verified at {_hm(step.at)}.",
    }[step.state]


def _alerts_sentence(incident: IncidentRecord, events: Sequence[Event], acted: bool) -> str:
    changes = [e for e in events if e.type == "status_changed" and e.data.get("from") != e.data.get("to")]
    if changes and changes[-1].data.get("cause") == "refired" and incident.status != "monitoring":
        last = changes[-1]
        done = next((e for e in reversed(events) if e.type == "triaged" and e.seq > last.seq), None)
        then = f"diagnosed again at {_hm(done.at)}." if done else "diagnosing again."  # never stale
        return f"{last.data.get('reason', 'The alert fired again')} at {_hm(last.at)}; {then}"
    tracked = tracked_alerts(events)
    still = firing(tracked)
    if tracked and not still:
        return "All alerts have resolved." if acted else \
            "All alerts have resolved without any mitigation applied; watching that it stays quiet."
    if still and len(still) < len(tracked):
        return f"{len(still)} of {len(tracked)} alerts still firing."
    return ""


def current(incident: IncidentRecord, events: Sequence[Event]) -> str:
    """The 'Current status' sentence: alerts, then the mitigation, true to the ledger."""
    steps = outcomes(events)
    held = in_place(steps)
    parts = [_alerts_sentence(incident, events, bool(steps))]
    latest = steps[-1] if steps else None
    if held is not None and (latest is None or latest.state not in ("failed", "reverted")):
        watching = "" if incident.status == "resolved" else " Watching that it holds."
        parts.append(_step_sentence(held) + watching)
    elif latest is not None and not (incident.status == "resolved" and latest.state in _PENDING):
        parts.append(_step_sentence(latest))
    elif not parts[0] and incident.status != "resolved":
        parts.append("Engineers are investigating.")
    if incident.status == "resolved":
        parts.insert(0, f"Resolved at {_hm(incident.resolved_at or incident.updated_at)}.")
    return public(" ".join(p for p in parts if p))
