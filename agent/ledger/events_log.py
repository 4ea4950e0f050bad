"""Every ledger event is also a structured log line: what the daemon did, readable where its logs
go (`hemostat run --log-format json`) without opening the ledger.

One line per event, named by the event type, carrying the incident and proposal ids and a few
plain facts from its data (a status move, a proposal's branch and verdict, an approver, an
execution's outcome, a verification's verdict), never the whole payload. Observations and
findings are logged at debug; everything that moves an incident or a proposal at info.
"""

from __future__ import annotations

from typing import Any

from agent.model.quietlog import emit

DEBUG_EVENTS = frozenset({"observations", "finding", "diagnosis_requested"})
FACTS = ("from", "to", "reason", "cause", "severity", "title", "alertname", "source", "approvals",
         "needed", "ok", "detail", "error", "code", "verified", "dry_run", "summary", "status")


def _facts(type: str, data: dict[str, Any]) -> dict[str, Any]:
    out = {k: data[k] for k in FACTS if k in data and isinstance(data[k], str | int | float | bool)}
    if type == "proposal":
        proposal, verdict = data.get("proposal") or {}, data.get("verdict") or {}
        path = proposal.get("path") or [{}]
        out.update(action=proposal.get("action"), subject=proposal.get("subject"),
                   branch=path[0].get("branch"), verdict=verdict.get("decision"))
    elif type == "finding":
        out.update(kind=data.get("kind"), subject=data.get("subject"))
    elif type in ("alert_fired", "alert_resolved", "alert_unmatched"):
        alerts = [a for a in data.get("alerts") or [] if isinstance(a, dict)]
        out.update(alerts=len(alerts), alertnames=sorted({str((a.get("labels") or {}).get("alertname", "?"))
                                                          for a in alerts}))
    for key in ("detail", "error", "summary", "reason"):
        if isinstance(out.get(key), str) and len(out[key]) > 300:
            out[key] = out[key][:300] + "…"
    return {k: v for k, v in out.items() if v is not None}


def log_event(type: str, actor: str, incident_id: str | None, proposal_id: str | None,
              data: dict[str, Any]) -> None:
    level = "debug" if type in DEBUG_EVENTS else "info"
    emit("hemostat.events", level, type, actor=actor, incident_id=incident_id, proposal_id=proposal_id,
         **_facts(type, data))
