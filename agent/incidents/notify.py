"""The notifiers that carry status updates (rendered by `agent.incidents.status`) to people.

The daemon hands a `StatusUpdate` to `Notifier.dispatch`, which returns at once: delivery to
every configured channel (Slack incoming webhook, generic JSON webhook, stdout) runs in a
background task, retries temporary failures with exponential backoff, and reports each outcome
through `on_result`, which the daemon turns into a `notification` ledger event. Webhook URLs are
secrets: they are resolved only when sending and never appear in a reported error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import structlog

from agent.incidents.status import StatusUpdate
from agent.model import HemostatError, PermanentError, SecretRef, TemporaryError, redact, truncate
from agent.model.text import CONTEXT, FALLBACK, HEADER, SECTION, slack_cut, slack_escape, slack_fit

if TYPE_CHECKING:
    from agent.model.bounded_http import Answer
    from agent.model.config import NotifierConfig

log = structlog.get_logger(__name__)
ANSWER_BYTES = 64 * 1024  # a channel's reply is "ok" or an error: only its first words are kept

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


def slack_payload(update: StatusUpdate, buttons: bool = False) -> dict[str, Any]:
    """Slack incoming-webhook JSON: a plain `text` fallback for notifications, plus blocks; with
    `buttons` (Slack interactions configured), Approve / Reject for each pending proposal."""
    head = f"{update.status}: {update.headline()}"
    body = "\n".join(f"*{k}:* {slack_escape(v)}" for k, v in update.fields())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": slack_fit(head, HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(body, SECTION)}},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": slack_fit(f"{update.incident_id} · {update.target}", CONTEXT)}]},
    ]
    if buttons:
        from agent.incidents.slack_blocks import decision_blocks  # only Slack with interactions needs it

        blocks += decision_blocks(update.pending)
    # the fallback text is mrkdwn too: <!channel> would ping
    return {"text": slack_fit(head, FALLBACK), "blocks": blocks}


def slack_plain(update: StatusUpdate) -> dict[str, Any]:
    """The same update without blocks: what is posted when Slack refuses the blocks (HTTP 400)."""
    lines = [f"{update.status}: {update.headline()}", *(f"{k}: {v}" for k, v in update.fields()),
             f"{update.incident_id} · {update.target}"]
    return {"text": slack_fit("\n".join(lines), FALLBACK)}




@dataclass
class HttpChannel:
    """POSTs JSON to a secret URL: Slack's shape or the update itself (`kind` 'webhook')."""

    name: str
    url: SecretRef
    kind: str = "webhook"
    timeout_s: float = 5.0
    buttons: bool = False  # Slack only: Approve / Reject (needs the interactions endpoint)

    async def send(self, update: StatusUpdate) -> None:
        url = self.url.resolve()
        payload = slack_payload(update, self.buttons) if self.kind == "slack" else update.to_json()
        response = await _post(url, payload, self.timeout_s)
        if self.kind == "slack" and response.status_code == 400:
            # Slack refused the blocks (invalid_blocks, too long): the words still go out, as text
            log.warning("slack refused the blocks; posting plain text", channel=self.name,
                        incident_id=update.incident_id, answer=redact(truncate(response.text.strip(), 200),
                                                                      secrets=(url, *url.split("/")[3:])))
            response = await _post(url, slack_plain(update), self.timeout_s)
        _raise_for(response, url)


async def _post(url: str, payload: dict[str, Any], timeout_s: float) -> Answer:
    import httpx  # imported here: `hemostat status` should not pay for it

    from agent.model.bounded_http import fetch

    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            return await fetch(client, "POST", url, timeout_s=timeout_s, max_bytes=ANSWER_BYTES, json=payload)
    except httpx.TimeoutException as e:
        raise TemporaryError(f"no answer within {timeout_s:g}s", delay=0, code="notify_timeout") from e
    except httpx.HTTPError as e:  # str(e) may quote the URL: only the type is kept
        raise TemporaryError(f"unreachable ({type(e).__name__})", delay=0,
                             code="notify_unreachable") from e


def _raise_for(response: Answer, url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    body = redact(truncate(response.text.strip(), 200), secrets=(url, *url.split("/")[3:]))
    message = f"HTTP {status}" + (f": {body}" if body else "")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("retry-after", "")
        delay = float(retry_after) if retry_after.isdigit() else 0.0
        raise TemporaryError(message, delay=delay, code="notify_http")
    raise PermanentError(message, code="notify_rejected")


@dataclass
class StdoutChannel:
    """One JSON line per update, like the daemon's own logs. Alert text goes only into field
    values, so a summary holding a newline and a JSON object cannot forge a log line."""

    name: str = "stdout"
    stream: TextIO | None = None  # None: whatever sys.stdout is when sending

    async def send(self, update: StatusUpdate) -> None:
        stream = self.stream or sys.stdout
        line = {"event": "status update", "channel": self.name, "headline": update.headline(),
                **update.to_json()}
        stream.write(json.dumps(line, ensure_ascii=True) + "\n")
        stream.flush()


def channels_from(configs: Sequence[NotifierConfig], buttons: bool = False) -> list[Channel]:
    """One channel per configured notifier, named `<type>#<index>` (never by its URL). `buttons`:
    Slack interactions are configured, so Slack updates carry Approve / Reject."""
    out: list[Channel] = []
    for i, c in enumerate(configs):
        if c.type == "stdout":
            out.append(StdoutChannel(f"stdout#{i}"))
        else:
            assert c.url is not None  # NotifierConfig requires it for http types
            out.append(HttpChannel(f"{c.type}#{i}", c.url, c.type, c.timeout_s, buttons))
    return out


def _redacted(update: StatusUpdate) -> StatusUpdate:
    """The update with every text field redacted: what reaches people never carries a secret."""
    texts: dict[str, Any] = {f.name: redact(v) for f in dataclasses.fields(update)
                             if isinstance(v := getattr(update, f.name), str)}
    return dataclasses.replace(update, **texts)


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
        safe = _redacted(update)
        results = await asyncio.gather(*(self._one(c, safe) for c in self.channels))
        for result in results:
            self._report(update, result)
        return list(results)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for dispatched deliveries (graceful shutdown); cancel what is left at the deadline."""
        await drain_tasks(self._pending, timeout_s)

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


async def drain_tasks(tasks: set[asyncio.Task[Any]], timeout_s: float | None) -> None:
    """Wait for `tasks` until the deadline, then cancel the rest and let them unwind."""
    if not tasks:
        return
    _, late = await asyncio.wait(set(tasks), timeout=timeout_s)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
