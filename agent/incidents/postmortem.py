"""Post-mortems from the ledger: the playbook's template filled with what actually happened.

`render_postmortem(incident, events)` writes Markdown (summary, timeline with real times, root
cause as found, action items seeded from the evidence); `scenario_from_incident` turns the
incident's recorded observations into a drill, so every real incident becomes a regression test.
Both are pure: `hemostat postmortem` reads the ledger and calls them. Everything that came from
outside (alert titles and summaries, findings, actors, errors) is escaped with `md` before it
goes into the Markdown: it cannot open a heading, a table row, a link or raw HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.incidents.status import event_line, proposal_label, role_holders
from agent.ledger import Event, IncidentRecord
from agent.model import Finding, HemostatError

if TYPE_CHECKING:
    from policies.tree import Tree

GROUPS = ("Prevent recurrence", "Improve detection", "Reduce impact", "Speed up response")
PREVENT, DETECT, REDUCE, RESPOND = GROUPS
SLOW_APPROVAL = timedelta(minutes=5)
# Mid-line, these are the characters that make markup (emphasis, code, links and images, table
# cells, strikethrough); line-start markup (#, -, >) cannot happen once the text is one line.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def md(text: object) -> str:
    """`text` as inert Markdown: one line, `<` as an entity, markup characters backslashed."""
    flat = " ".join(str(text).split())
    flat = flat.replace("<", "&lt;")  # no tag, no autolink can open without it
    return _MARKDOWN.sub(r"\\\1", flat)


def code(text: object) -> str:
    """`text` as a code span: one line, no backtick to close it early."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"

# Action items per finding kind: (group, template). Templates see `subject`, `role`, `deploy`.
ITEMS: dict[str, tuple[tuple[str, str], ...]] = {
    "recent_deploy": ((PREVENT, "Add a canary / progressive rollout for {subject}, so {deploy} would have "
                                "reached a few users, not all"),
                      (REDUCE, "Roll back {subject} automatically when its error rate rises after a deploy")),
    "error_spike": ((DETECT, "Alert on {subject}'s error rate before users notice ({rate})"),),
    "crash_loop": ((PREVENT, "Make a crash-looping {subject} fail its rollout (readiness gate, "
                             "progressDeadlineSeconds)"),),
    "oom_killed": ((PREVENT, "Right-size {subject}'s memory limit and look for the leak"),
                   (DETECT, "Alert on {subject}'s memory nearing its limit")),
    "replicas_unavailable": ((REDUCE, "PodDisruptionBudget and a minimum replica count for {subject}"),),
    "rollout_stuck": ((DETECT, "Alert when {subject}'s rollout exceeds its progress deadline"),),
    "pods_pending": ((REDUCE, "Keep scheduling headroom (cluster autoscaler, priority) for {subject}"),),
    "cpu_saturated": ((REDUCE, "Raise {subject}'s autoscaling ceiling or CPU request"),
                      (DETECT, "Alert on {subject}'s CPU saturation before it serves errors")),
    "memory_saturated": ((REDUCE, "Raise {subject}'s memory or scale it out before saturation"),),
    "hpa_at_max": ((REDUCE, "Raise the HPA maximum for {subject}, or shed load when it is reached"),),
    "db_connections_saturated": ((REDUCE, "Connection pooler and per-role connection limits on {subject}"),),
    "long_running_queries": ((PREVENT, "statement_timeout for {role}"),),
    "lock_contention": ((PREVENT, "lock_timeout for {role}, and run migrations with it"),),
    "idle_in_transaction": ((PREVENT, "idle_in_transaction_session_timeout for {role}"),),
    "dependency_down": ((REDUCE, "Circuit breaker + fallback for {subject}"),
                        (DETECT, "Synthetic check on {subject}'s health endpoint, alerting on its own")),
    "dependency_slow": ((REDUCE, "Tighter client timeout + circuit breaker for {subject}"),),
    "provider_incident": ((RESPOND, "Subscribe the on-call channel to {subject}'s status page"),),
    "probe_failed": ((DETECT, "Restore visibility: {summary}"),),
}


def render_postmortem(incident: IncidentRecord, events: Sequence[Event],
                      roles: Mapping[Any, str] | None = None) -> str:
    """The post-mortem draft as Markdown. Root cause and action items are seeds, to be edited.
    `roles`: hemostat.yaml's defaults; assignments in the ledger win."""
    parts = [[f"# Post-mortem: {md(incident.title)}"], _summary(incident, events, roles),
             _timeline(incident, events), _root_cause(events), _action_items(incident, events)]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


# -- summary ----------------------------------------------------------------------------------

def span(delta: timedelta) -> str:
    """'1 h 12 min', '4 min', '40 s'."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _summary(incident: IncidentRecord, events: Sequence[Event],
             roles: Mapping[Any, str] | None = None) -> list[str]:
    start, end = incident.opened_at, incident.resolved_at
    duration = (f"{span(end - start)} ({start:%H:%M} to {end:%H:%M} UTC)" if end
                else f"still open ({incident.status})")
    out = ["## Summary", "", f"- **Incident:** {md(incident.id)} on {code(incident.target)}",
           f"- **Date:** {start:%Y-%m-%d} (UTC)", f"- **Duration:** {duration}",
           f"- **Severity:** SEV-{incident.severity}", f"- **Impact:** {_impact(events)}"]
    holders = role_holders(events, roles)
    out += [f"- **{role.replace('_', ' ').capitalize()}:** {md(holders[role])}"
            for role in ("incident_commander", "communications", "technical_lead") if role in holders]
    moments = dict(_milestones(incident, events))
    for label, key in (("Time to identify", "Root cause identified"),
                       ("Time to mitigate", "Mitigation applied")):
        if (at := moments.get(key)) is not None:
            out.append(f"- **{label}:** {span(at - start)}")
    return out


def _impact(events: Sequence[Event]) -> str:
    triaged = [e.data for e in events if e.type == "triaged" and e.data.get("severity")]
    seen: dict[str, None] = {}
    for t in triaged:  # every impact stated during the incident, in order, once
        seen.update(dict.fromkeys(t.get("impact") or t.get("broken", [])[:1]))
    return md("; ".join(seen)) or "not measured"


# -- timeline ---------------------------------------------------------------------------------

def _first(events: Sequence[Event], test: Callable[[Event], bool]) -> datetime | None:
    return next((e.at for e in events if test(e)), None)


def _status_to(*statuses: str) -> Callable[[Event], bool]:
    return lambda e: e.type == "status_changed" and e.data.get("to") in statuses


def _alert_began(events: Sequence[Event]) -> datetime | None:
    """When the first alert began firing (its startsAt), not when Hemostat heard of it."""
    fired = next((e for e in events if e.type == "alert_fired"), None)
    if fired is None:
        return None
    alerts = fired.data.get("alerts", ())
    starts = [datetime.fromisoformat(a["startsAt"]) for a in alerts if a.get("startsAt")]
    return min(starts, default=fired.at)


def _milestones(incident: IncidentRecord, events: Sequence[Event]) -> list[tuple[str, datetime | None]]:
    alert = _alert_began(events)
    return [
        ("Alert fired" if alert else "Incident opened", alert or incident.opened_at),
        ("Investigation started", _first(events, lambda e: e.type in ("observations", "triaged")
                                         or _status_to("investigating")(e))),
        ("Root cause identified", _first(events, lambda e: _status_to("identified")(e)
                                         or e.type == "proposal")),
        ("Mitigation applied", _first(events, lambda e: e.type == "proposal_succeeded"
                                      or (e.type == "execution_finished" and bool(e.data.get("ok"))))),
        ("Resolved", incident.resolved_at),
    ]


def _timeline(incident: IncidentRecord, events: Sequence[Event]) -> list[str]:
    multi_day = (events[-1].at.date() if events else incident.opened_at.date()) != incident.opened_at.date()
    fmt = "%m-%d %H:%M:%S" if multi_day else "%H:%M:%S"
    out = ["## Timeline (UTC)", ""]
    for label, at in _milestones(incident, events):
        when = f"{at:{fmt}} (+{span(at - incident.opened_at)})" if at else "not reached"
        out.append(f"- **{label}:** {when}")
    out += ["", "| Time | Event | By |", "|---|---|---|"]
    last = None
    for e in events:
        line = event_line(e, events)
        if line and line != last:  # repeated sweeps re-triage the same way: show it once
            out.append(f"| {e.at:{fmt}} | {_cell(line)} | {_cell(e.actor)} |")
        last = line or last
    return out


def _cell(text: str) -> str:
    return md(text)


# -- root cause -------------------------------------------------------------------------------

def findings_of(events: Sequence[Event]) -> list[Finding]:
    """The incident's findings, latest per (kind, subject), worst first."""
    latest = {(f.kind, f.subject): f for f in (Finding.from_json(e.data) for e in events
                                               if e.type == "finding")}
    return sorted(latest.values(), key=lambda f: (f.severity, f.kind, f.subject))


def _root_cause(events: Sequence[Event]) -> list[str]:
    triaged = [e.data for e in events if e.type == "triaged"]
    changed = triaged[-1].get("changed", []) if triaged else []
    out = ["## Root cause (as Hemostat found it; confirm or correct)", "",
           f"**What changed:** {md('; '.join(changed)) or 'no recent change was found'}", "", "**Evidence:**"]
    out += [f"- {f.severity.label()} {code(f.kind)} {md(f.subject)}: {md(f.summary)}"
            for f in findings_of(events) if f.kind != "recent_deploy"][:5] or ["- no findings recorded"]
    out += ["", "**Mitigation path:**"]
    executed = [e for e in events if e.type == "proposal" and _ran(e.proposal_id, events)]
    out += [_path_line(p, events) for p in executed] or ["- no mitigation was executed"]
    return out


def _ran(proposal_id: str | None, events: Sequence[Event]) -> bool:
    return any(e.type == "execution_started" and e.proposal_id == proposal_id for e in events)


def _path_line(proposal: Event, events: Sequence[Event]) -> str:
    steps = " → ".join(f"{md(s['branch'])} ({md(s['because'])})" for s in proposal.data["proposal"]["path"])
    states = [e.type.removeprefix("proposal_") for e in events
              if e.proposal_id == proposal.proposal_id and e.type.startswith("proposal_")]
    outcome = states[-1] if states else "executing"
    return f"- {steps} → **{md(proposal_label(proposal.proposal_id, events))}**: {md(outcome)}"


# -- action items -----------------------------------------------------------------------------

def action_items(incident: IncidentRecord, events: Sequence[Event]) -> dict[str, list[str]]:
    """Seeded action items per group, specific to the evidence and without repeats."""
    groups: dict[str, dict[str, None]] = {g: {} for g in GROUPS}
    for f in findings_of(events):
        for group, template in ITEMS.get(f.kind, ((RESPOND, f"Write a runbook entry for {code(f.kind)}"
                                                            " on {subject}"),)):
            groups[group][template.format_map(_context(f))] = None
    if not any(e.type == "alert_fired" for e in events):
        groups[DETECT][f"No alert fired: {md(incident.target)}'s problem was found by a sweep or by hand; "
                       "add the alert that should have paged"] = None
    for item in _response_items(events):
        groups[RESPOND][item] = None
    return {g: list(items) for g, items in groups.items()}


def _context(f: Finding) -> dict[str, Any]:
    roles = f.facts.get("roles") or [f.facts.get("role") or f.facts.get("usename")]
    role = ", ".join(f"role {r}" for r in roles if r) or f"the roles querying {f.subject}"
    deploy = f"deploy {f.facts['short']}" if f.facts.get("short") else "the deploy"
    ratio = f.facts.get("ratio")
    rate = f"it reached {float(ratio):.0%}" if ratio is not None else f.summary
    return {k: md(v) for k, v in {"subject": f.subject, "role": role, "deploy": deploy, "rate": rate,
                                   "summary": f.summary}.items()}


def _response_items(events: Sequence[Event]) -> list[str]:
    proposed = {e.proposal_id: e.at for e in events if e.type == "proposal"}
    out = []
    for e in events:
        what = md(proposal_label(e.proposal_id, events))
        waited = e.at - proposed.get(e.proposal_id, e.at)
        if e.type == "proposal_approved" and waited > SLOW_APPROVAL:
            out.append(f"{what} waited {span(waited)} for approval: shorten the path to an approver")
        elif e.type == "proposal_expired":
            out.append(f"{what} expired unapproved: make sure proposals reach someone who can decide")
        elif e.type == "proposal_failed":
            out.append(f"{what} failed ({md(e.data.get('error') or e.data.get('detail'))}): fix it or "
                       "document the manual fallback")
    return out


def _action_items(incident: IncidentRecord, events: Sequence[Event]) -> list[str]:
    out = ["## Action items (seeded from the evidence)"]
    for group, items in action_items(incident, events).items():
        out += ["", f"### {group}", ""] + ([f"- [ ] {i}" for i in items] or ["- nothing from the evidence"])
    return out


# -- drill ------------------------------------------------------------------------------------

def scenario_from_incident(incident: IncidentRecord, events: Sequence[Event],
                           target_spec_json: dict[str, Any], tree: Tree | None = None) -> dict[str, Any]:
    """A drill scenario (agent/diagnosis/drill.py's format) from the incident's first recorded diagnosis.

    `expect` is what the ledger recorded then: the triage's severity and the proposed actions.
    Branch names come from the proposals' paths, mapped through `tree` (titles to names); without
    a tree, or when a path names a branch the tree lacks, `branches` is left out.
    """
    marks = [i for i, e in enumerate(events) if e.type == "observations"]
    if not marks:
        raise HemostatError(f"incident {incident.id} has no recorded observations "
                            "(it was never diagnosed); nothing to replay", code="no_observations")
    first = events[marks[0]]
    segment = events[marks[0] + 1: marks[1] if len(marks) > 1 else len(events)]
    triaged = next((e.data for e in segment if e.type == "triaged"), {})
    proposals = [e.data["proposal"] for e in segment if e.type == "proposal"]
    expect: dict[str, Any] = {"severity": triaged.get("severity") or "none",
                              "actions": sorted({p["action"] for p in proposals})}
    branches = triaged.get("branches") or _branch_names(proposals, tree)  # recorded since v0.1
    if branches is not None:
        expect["branches"] = branches
    return {"name": f"{incident.target}: {incident.title} ({incident.id})", "target": target_spec_json,
            "started_at": first.at.isoformat(), "observations": first.data["observations"],
            "expect": expect}


def _branch_names(proposals: Sequence[dict[str, Any]], tree: Tree | None) -> list[str] | None:
    if tree is None:
        return None
    by_title = {b.title: b.name for b in tree.branches}
    titles = list(dict.fromkeys(p["path"][0]["branch"] for p in proposals if p.get("path")))
    if any(t not in by_title for t in titles):
        return None
    return [by_title[t] for t in titles]
