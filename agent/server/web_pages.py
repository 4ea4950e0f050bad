"""The web view's HTML, rendered on the server from the read API's documents (agent.server.read_api).

Every value from the ledger (alert labels, titles, evidence, reasons, names) goes through
`esc()`; the pages carry no inline script or style, so the Content-Security-Policy
(agent.server.web) can forbid both. The page's `<main>` is what the script swaps on each poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

TITLE = "Hemostat"
WAITING = ("proposed",)  # a decision can still be given (approvals below the count stay proposed)


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def when(value: str | None) -> str:
    if not value:
        return "-"
    at = datetime.fromisoformat(value)
    return f'<time datetime="{esc(value)}">{at:%Y-%m-%d %H:%M:%S}Z</time>'


def page(title: str, body: str, *, who: str = "", csrf: str = "", live: bool = False) -> str:
    meta = f'<meta name="csrf-token" content="{esc(csrf)}">' if csrf else ""
    user = (f'<span class="who">{esc(who)}</span> <button type="button" data-signout>sign out</button>'
            if who else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            '<link rel="stylesheet" href="/ui/static/app.css"><script src="/ui/static/app.js" defer></script>'
            f'</head><body><header><a href="/ui/" class="brand">{TITLE}</a>{user}</header>'
            f'<p id="flash" role="status" aria-live="polite"></p>'
            f'<main{" data-live" if live else ""}>{body}</main></body></html>')


def message(title: str, text: str) -> str:
    return page(title, f"<h1>{esc(title)}</h1><p>{esc(text)}</p>")


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _sev(value: str) -> str:
    return f'<span class="sev {esc(value.lower())}">{esc(value)}</span>'


def _state(value: str) -> str:
    return f'<span class="state {esc(value)}" data-state="{esc(value)}">{esc(value)}</span>'


def incident_list(docs: list[dict[str, Any]], query: Mapping[str, str]) -> str:
    filters = ", ".join(f"{k}={v}" for k, v in sorted(query.items()) if v)
    rows = [(f'<a href="/ui/incidents/{quote(d["id"])}">{esc(d["id"])}</a>', _sev(d["severity"]),
             esc(d["status"]), esc(d["target"]), when(d["opened_at"]), esc(d["title"])) for d in docs]
    table = _table(("Incident", "Severity", "Status", "Target", "Opened", "Title"), rows, "incidents") \
        if rows else "<p>No incidents.</p>"
    return f'<h1>Incidents{f" ({esc(filters)})" if filters else ""}</h1>{table}'


def incident_detail(doc: dict[str, Any]) -> str:
    head = (f'<h1>{esc(doc["title"])}</h1><p class="facts">{_sev(doc["severity"])} '
            f'<span class="status">{esc(doc["status"])}</span> · target <b>{esc(doc["target"])}</b> · '
            f'opened {when(doc["opened_at"])} · <code>{esc(doc["id"])}</code></p>')
    events = doc.get("events", [])
    return (head + _evidence(events) + '<h2>Proposals</h2>'
            + ("".join(_proposal(p) for p in doc.get("proposals", [])) or "<p>No proposals.</p>")
            + "<h2>Timeline</h2>" + _timeline(events))


def _evidence(events: list[dict[str, Any]]) -> str:
    latest = {(e["data"].get("kind"), e["data"].get("subject")): e["data"] for e in events
              if e["type"] == "finding"}
    if not latest:
        return ""
    rows = [(esc(f.get("severity", "")), esc(f.get("kind", "")), esc(f.get("subject", "")),
             esc(f.get("summary", "")) + _lines(f.get("evidence", [])[:5]))
            for f in sorted(latest.values(), key=lambda f: str(f.get("severity", "")))]
    return "<h2>Evidence</h2>" + _table(("Severity", "Kind", "Subject", "Finding"), rows, "evidence")


def _lines(items: Iterable[Any], cls: str = "") -> str:
    body = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f'<ul class="{esc(cls)}">{body}</ul>' if body else ""


def _proposal(p: dict[str, Any]) -> str:
    verdict = p.get("verdict", {})
    approvals = ", ".join(f'{a.get("name")} ({a.get("source")})' for a in p.get("approvals", []))
    plan = p.get("plan") or {}
    parts = [f'<h3>{esc(p["action"])} {esc(p["subject"])} {_state(p["state"])}'
             f'{" <small>(alternative)</small>" if p.get("role") == "alternative" else ""}</h3>',
             f'<p class="reason">{esc(p.get("reason", ""))}</p>',
             _lines((f'{s["branch"]}: {s["because"]}' for s in p.get("path", [])), "path")]
    if p.get("support"):
        parts.append("<h4>Evidence for</h4>" + _lines(p["support"], "for"))
    if p.get("against"):
        parts.append("<h4>Evidence against</h4>" + _lines(p["against"], "against"))
    would = (p.get("preview") or {}).get("summary") or plan.get("summary")
    if would:
        parts.append(f'<h4>Plan</h4><p class="plan">{esc(would)}</p>'
                     + _lines(f'{c.get("resource")} {c.get("field")}: {c.get("before")} → {c.get("after")}'
                              for c in plan.get("changes", []) if isinstance(c, dict)))
    dry_run = " (dry-run)" if verdict.get("dry_run") else ""
    parts.append(f'<p class="verdict">policy: <b>{esc(verdict.get("decision", ""))}</b>'
                 f'{dry_run}: {esc("; ".join(verdict.get("reasons", [])))}'
                 f'<br>approvals: {esc(approvals or "none yet")} (needs '
                 f'{esc(max(1, int(verdict.get("approvals_required") or 0)))})</p>')
    if p["state"] in WAITING:
        parts.append(f'<form class="decide" data-id="{esc(p["id"])}"><input name="reason" '
                     'placeholder="reason (for a rejection)" maxlength="500" aria-label="reason">'
                     '<button type="submit" name="verb" value="approve">Approve</button>'
                     '<button type="submit" name="verb" value="reject">Reject</button></form>')
    return (f'<section class="proposal" id="{esc(p["id"])}"><code>{esc(p["id"])}</code>'
            f'{"".join(parts)}</section>')


def _timeline(events: list[dict[str, Any]]) -> str:
    rows = [(when(e["at"]), esc(e["type"]), esc(e["actor"]), esc(_summary(e))) for e in events]
    return _table(("At", "Event", "By", "Detail"), rows, "timeline") if rows else "<p>Nothing yet.</p>"


def _summary(event: dict[str, Any]) -> str:
    d = event.get("data") or {}
    if event["type"] == "proposal" and isinstance(d.get("proposal"), dict):
        p, verdict = d["proposal"], d.get("verdict") or {}
        return f'{p.get("action")} {p.get("subject")} ({verdict.get("decision")})'
    if event["type"] in ("alert_fired", "alert_resolved") and isinstance(d.get("alerts"), list):
        return "; ".join(", ".join(f"{k}={v}" for k, v in sorted((a.get("labels") or {}).items()))
                         for a in d["alerts"] if isinstance(a, dict))[:300]
    text = d.get("summary") or d.get("reason") or d.get("detail") or d.get("title") or d.get("headline") \
        or d.get("to") or ""
    return str(text)[:300]
