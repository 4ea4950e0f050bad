"""Human output: short, scannable text for a tired engineer. `--json` bypasses all of this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.cli.output import age, style
from agent.ledger import Event, IncidentRecord, ProposalRecord
from agent.model import shorten

VERDICT_COLOR = {"allow": "green", "needs_approval": "yellow", "deny": "red"}
SEV_COLOR = {"SEV-1": "red", "SEV-2": "red", "SEV-3": "yellow", "SEV-4": "cyan"}


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([style(lines[0], bold=True), *lines[1:]])


def hhmm(value: datetime | str | None, ages: bool = False) -> str:
    """`2026-12-08 00:39Z`; with `ages`, and how long ago (or how soon): `(4m ago)`, `(in 25m)`."""
    if value is None:
        return "-"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{at:%Y-%m-%d %H:%M}Z" + (f" ({age(at)})" if ages and at.tzinfo is not None else "")


def diagnosis(doc: dict[str, Any]) -> str:
    t = doc["triage"]
    sev = t["severity"] or "OK"
    out = [style(t["headline"], fg=SEV_COLOR.get(sev, "green"), bold=True)]
    if t["severity"]:
        out.append(f"  since    {hhmm(t['since'])}")
    out += [f"  broken   {b}" for b in t["broken"][:5]]
    out += [f"  changed  {c}" for c in t["changed"][:3]]
    out += [f"  impact   {i}" for i in t["impact"][:3]]
    out += [f"  noise    {n}" for n in t.get("noise", [])[:3]]
    out += [style(f"  INCOMPLETE {g['probe']} could not look: {g['why']}", fg="yellow")
            for g in t.get("missing", [])]
    if doc["findings"]:
        out += ["", table([(f["severity"], f["kind"], f["subject"], hhmm(f.get("onset")), f["summary"])
                           for f in doc["findings"]], ("SEV", "KIND", "SUBJECT", "BEGAN", "SUMMARY"))]
        out += _signatures(doc["findings"])
    out += [f"  {line}" for line in doc.get("ruled_out", [])]
    out += _proposals(doc)
    probes = ", ".join(f"{p['probe']} {'ok' if p['ok'] else 'FAILED'} {p['duration_s']:.2f}s"
                       for p in doc["probes"])
    out += ["", f"probes: {probes}"]
    open_breakers = [k for k, v in doc["breakers"].items() if v != "closed"]
    if open_breakers:
        out.append(f"breakers open: {', '.join(open_breakers)}")
    return "\n".join(out)


def _signatures(findings: Sequence[dict[str, Any]]) -> list[str]:
    """Error signatures whole, each with its count and first/last seen."""
    lines = [e for f in findings if f["kind"] == "error_spike" and f.get("facts", {}).get("top")
             for e in f["evidence"]]
    return ["", style("Error signatures", bold=True), *(f"  {line}" for line in lines)] if lines else []


def _proposals(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if doc["proposals"]:
        out += ["", style("Proposed mitigations", bold=True)]
    for p in doc["proposals"]:
        out += proposal_lines(p, p["verdict"])
    for s in doc["skipped"]:
        out.append(f"  (skipped {s['action']} {s['subject']}: {s['reason']})")
    return out


def proposal_lines(p: dict[str, Any], verdict: dict[str, Any], state: str | None = None) -> list[str]:
    decision = verdict["decision"] + (" (dry-run)" if verdict.get("dry_run") else "")
    head = f"  {p['id']}  {p['action']} {p['subject']}  -> " + style(
        decision, fg=VERDICT_COLOR[verdict["decision"]], bold=True)
    role = "  (alternative)" if p.get("role") == "alternative" else ""
    out = [head + role + (f"  [{state}]" if state else "")]
    for step in p["path"]:
        out.append(f"      {step['branch']}: {step['because']}")
    out += [f"      for:     {line}" for line in p.get("support", [])]
    out += [f"      against: {line}" for line in p.get("against", [])]
    preview = p.get("preview") or {}
    if preview.get("summary"):
        out.append(f"      would:   {preview['summary']}")
    if preview.get("verify"):
        out.append(f"      verify:  {preview['verify']}")
    out += [f"               pid {s['pid']} {s.get('user') or '-'} {s.get('state') or '-'}: {s.get('query')}"
            for s in preview.get("sessions", [])[:10]]
    out.append(f"      policy: {'; '.join(verdict['reasons'])}")
    return out


def proposals(records: Sequence[ProposalRecord], wide: bool = False) -> str:
    if not records:
        return "no proposals"
    rows = [(r.id, r.state, r.proposal.action, r.proposal.subject, r.proposal.target,
             r.verdict.decision, hhmm(r.expires_at, ages=True) if r.state == "proposed" else "")
            + ((hhmm(r.proposal.created_at, ages=True), r.proposal.incident_id or "-",
                ", ".join(r.approvers) or "-", r.claimed_by or "-") if wide else ())
            for r in records]
    return table(rows, ("ID", "STATE", "ACTION", "SUBJECT", "TARGET", "VERDICT", "EXPIRES")
                 + (("CREATED", "INCIDENT", "APPROVERS", "CLAIMED BY") if wide else ()))


def proposal_detail(record: ProposalRecord, events: Sequence[Event]) -> str:
    out = proposal_lines(record.proposal.to_json(), record.verdict.to_json(), record.state)
    who = [a.identity.describe() for a in record.approvals]  # which system vouched for each
    out.append(f"      approvers: {', '.join(who) or 'none yet'}"
               f" (needs {max(1, record.verdict.approvals_required)})")
    if record.plan:
        out.append(f"      plan: {record.plan.get('summary', '')}")
    out += ["", timeline(events)]
    return "\n".join(out)


def incidents(records: Sequence[IncidentRecord], wide: bool = False) -> str:
    """The incidents table; `wide`: the whole title and when each last changed."""
    if not records:
        return "no incidents"
    rows = [(r.id, f"SEV-{r.severity}", r.status, r.target, hhmm(r.opened_at, ages=True),
             *((hhmm(r.updated_at, ages=True), r.title) if wide else (shorten(r.title, 60),)))
            for r in records]
    return table(rows, ("ID", "SEV", "STATUS", "TARGET", "OPENED", *(("UPDATED",) if wide else ()), "TITLE"))


def timeline(events: Sequence[Event]) -> str:
    rows = [(hhmm(e.at, ages=True), e.type, e.actor, _event_summary(e)) for e in events]
    return table(rows, ("AT", "EVENT", "BY", "DETAIL"))


def _event_summary(event: Event) -> str:
    d = event.data
    text = d.get("summary") or d.get("reason") or d.get("detail") or d.get("title") or d.get("to") or ""
    if event.type == "proposal":
        text = f"{d['proposal']['action']} {d['proposal']['subject']} ({d['verdict']['decision']})"
    return shorten(str(text), 100)


def incident_proposals(records: Sequence[ProposalRecord], events: Sequence[Event]) -> str:
    """An incident's proposals, each with its id (what `approve`/`execute` take), its state and,
    when it did not go through, why (a failed execution's error, a denial, a rejection)."""
    rows = []
    for record in records:
        last = [e for e in events if e.proposal_id == record.id and e.type.startswith("proposal_")]
        why = (last[-1].data.get("error") or last[-1].data.get("detail") or last[-1].data.get("reason")
               or "") if last else ""
        if record.state == "denied":
            why = "; ".join(record.verdict.reasons)
        rows.append((record.id, f"{record.proposal.action} {record.proposal.subject}", record.state,
                     str(why)[:120]))
    return table(rows, ("PROPOSAL", "ACTION", "STATE", "WHY")) if rows else "no proposals"
