"""Status updates for the people following an incident, and the notifiers that carry them.

`status_update(incident, events, now, cadence)` renders the playbook's template from the ledger
(pure). The daemon hands the result to `Notifier.dispatch`, which returns at once: delivery to
every configured channel (Slack incoming webhook, generic JSON webhook, stdout) runs in a
background task, retries temporary failures with exponential backoff, and reports each outcome
through `on_result`, which the daemon turns into a `notification` ledger event. Webhook URLs are
secrets: they are resolved only when sending and never appear in a reported error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import structlog

from agent.ledger import Event, IncidentRecord
from agent.model import HemostatError, PermanentError, SecretRef, TemporaryError, redact, truncate

if TYPE_CHECKING:
    import httpx

    from agent.config import NotifierConfig

log = structlog.get_logger(__name__)

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

    def fields(self) -> list[tuple[str, str]]:
        nxt = utc(self.next_update_at) if self.next_update_at else "none: resolved"
        return [("Status", self.status), ("Impact", self.impact), ("Started", utc(self.started_at)),
                ("Current status", self.current), ("Next update", nxt)]

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
            "at": self.at.isoformat(),
        }


def status_update(incident: IncidentRecord, events: Sequence[Event], now: datetime,
                  cadence_minutes: float) -> StatusUpdate:
    """The update to post now for `incident`, from its ledger events. Pure."""
    resolved = incident.status == "resolved"
    return StatusUpdate(
        incident.id, incident.target, incident.title, incident.severity,
        STATUS_LABELS.get(incident.status, "Investigating"), _impact(events),
        incident.opened_at, _current(incident, events),
        None if resolved else now + timedelta(minutes=cadence_minutes), now,
    )


def _current(incident: IncidentRecord, events: Sequence[Event]) -> str:
    """The latest thing that happened; status changes only set the lead (they say less)."""
    lines = [line for e in events if e.type != "status_changed" and (line := event_line(e, events))]
    last = lines[-1] if lines else incident.title
    lead = {"monitoring": "Mitigation in place; watching that it holds.", "resolved": "Resolved."}
    return f"{lead[incident.status]} Last: {last}" if incident.status in lead else last


def _impact(events: Sequence[Event]) -> str:
    triaged = [e.data for e in events if e.type == "triaged"]
    if not triaged:
        return "being assessed"
    latest = triaged[-1]
    parts = latest.get("impact") or latest.get("broken", [])[:2] or [latest.get("headline", "")]
    return "; ".join(str(p) for p in parts if p) or "being assessed"


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
        return None  # a record update (roles, notes) that did not change the status
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


# -- delivery ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    """How one update fared on one channel. `error` is redacted: it never holds the URL."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "attempts": self.attempts,
                "error": self.error, "code": self.code}


@dataclass(frozen=True)
class Backoff:
    """Retry schedule: base_s * 2**n, capped at max_s, at most `attempts` tries in all."""

    attempts: int = 5  # about a minute of trying at the defaults, then give up and report
    base_s: float = 1.0
    max_s: float = 60.0

    def delay(self, attempt: int, hint_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1)."""
        return float(min(self.max_s, max(hint_s or 0.0, self.base_s * 2 ** (attempt - 1))))


class Channel(Protocol):
    """One place updates go. `send` raises PermanentError or TemporaryError."""

    name: str

    async def send(self, update: StatusUpdate) -> None: ...


def slack_payload(update: StatusUpdate) -> dict[str, Any]:
    """Slack incoming-webhook JSON: a plain `text` fallback for notifications, plus blocks."""
    head = f"{update.status}: {update.headline()}"
    body = "\n".join(f"*{k}:* {_esc(v)}" for k, v in update.fields())
    return {
        "text": truncate(head, 300),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": _esc(f"{update.incident_id} · {update.target}")}]},
        ],
    }


def _esc(text: str) -> str:
    """Slack reads & < > as markup (`<!channel>` pings everyone), so ledger text is escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class HttpChannel:
    """POSTs JSON to a secret URL: Slack's shape or the update itself (`kind` 'webhook')."""

    name: str
    url: SecretRef
    kind: str = "webhook"
    timeout_s: float = 5.0

    async def send(self, update: StatusUpdate) -> None:
        url = self.url.resolve()
        payload = slack_payload(update) if self.kind == "slack" else update.to_json()
        response = await _post(url, payload, self.timeout_s)
        _raise_for(response, url)


async def _post(url: str, payload: dict[str, Any], timeout_s: float) -> httpx.Response:
    import httpx  # imported here: `hemostat status` should not pay for it

    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            return await client.post(url, json=payload)
    except httpx.TimeoutException as e:
        raise TemporaryError(f"no answer within {timeout_s:g}s", delay=0, code="notify_timeout") from e
    except httpx.HTTPError as e:  # str(e) may quote the URL: only the type is kept
        raise TemporaryError(f"unreachable ({type(e).__name__})", delay=0,
                             code="notify_unreachable") from e


def _raise_for(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    body = redact(truncate(response.text.strip(), 200), secrets=(url, *url.split("/")[3:]))
    message = f"HTTP {status}" + _why(body)
    if status == 429 or status >= 500:
        retry_after = response.headers.get("retry-after", "")
        delay = float(retry_after) if retry_after.isdigit() else 0.0
        raise TemporaryError(message, delay=delay, code="notify_http")
    raise PermanentError(message, code="notify_rejected")


@dataclass
class StdoutChannel:
    name: str = "stdout"
    stream: TextIO | None = None  # None: whatever sys.stdout is when sending

    async def send(self, update: StatusUpdate) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"[{update.incident_id}] {update.headline()}\n{update.text()}\n\n")
        stream.flush()


def channels_from(configs: Sequence[NotifierConfig]) -> list[Channel]:
    """One channel per configured notifier, named `<type>#<index>` (never by its URL)."""
    out: list[Channel] = []
    for i, c in enumerate(configs):
        if c.type == "stdout":
            out.append(StdoutChannel(f"stdout#{i}"))
        else:
            assert c.url is not None  # NotifierConfig requires it for http types
            out.append(HttpChannel(f"{c.type}#{i}", c.url, c.type, c.timeout_s))
    return out


OnResult = Callable[[StatusUpdate, Delivery], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Notifier:
    """Sends each update to every channel concurrently; `dispatch` never blocks the caller."""

    channels: Sequence[Channel]
    on_result: OnResult | None = None
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Sleep = asyncio.sleep
    _pending: set[asyncio.Task[list[Delivery]]] = field(default_factory=set)

    def dispatch(self, update: StatusUpdate) -> asyncio.Task[list[Delivery]]:
        """Schedule delivery in the background and return at once (needs a running loop)."""
        task = asyncio.create_task(self.deliver(update), name=f"notify:{update.incident_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def deliver(self, update: StatusUpdate) -> list[Delivery]:
        """Deliver to every channel at once, each with its own retries; report every outcome."""
        results = await asyncio.gather(*(self._one(c, update) for c in self.channels))
        for result in results:
            self._report(update, result)
        return list(results)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for dispatched deliveries (graceful shutdown); cancel what is left at the deadline."""
        if not self._pending:
            return
        _, late = await asyncio.wait(set(self._pending), timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _one(self, channel: Channel, update: StatusUpdate) -> Delivery:
        for attempt in range(1, self.backoff.attempts + 1):
            try:
                await channel.send(update)
                return Delivery(channel.name, True, attempt)
            except TemporaryError as e:
                if attempt == self.backoff.attempts:
                    return Delivery(channel.name, False, attempt, str(e), e.code)
                await self.sleep(self.backoff.delay(attempt, e.delay))
            except HemostatError as e:
                return Delivery(channel.name, False, attempt, str(e), e.code)
            except Exception as e:  # a notifier bug must not take the daemon down
                return Delivery(channel.name, False, attempt, type(e).__name__, "notify_crashed")
        raise AssertionError("Backoff.attempts must be at least 1")

    def _report(self, update: StatusUpdate, delivery: Delivery) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(update, delivery)
        except Exception:  # the ledger being down must not turn into an unretrieved task error
            log.exception("notification result not recorded", channel=delivery.channel,
                          incident=update.incident_id)
