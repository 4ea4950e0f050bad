"""Status updates and their delivery: a real loopback webhook catcher receives the Slack and JSON
messages; a notifier that is down is retried with backoff (injected sleep) and reported without
its URL, while `dispatch` returns at once."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.incidents.notify import (
    Backoff,
    Channel,
    Delivery,
    HttpChannel,
    Notifier,
    StdoutChannel,
    channels_from,
    slack_payload,
)
from agent.incidents.status import StatusUpdate, status_update
from agent.ledger import Event, IncidentRecord
from agent.model import SecretRef
from agent.model.config import NotifierConfig

T0 = datetime(2026, 11, 27, 2, 55, tzinfo=UTC)
TOKEN_PATH = "/services/T0001/B0002/s3cr3t-t0ken-xyz"


@dataclass
class Catcher:
    """A webhook receiver on 127.0.0.1: records each POST and answers from a script."""

    answers: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = TOKEN_PATH) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def start(self) -> Catcher:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append({"path": self.path, "type": self.headers["Content-Type"],
                                       "json": json.loads(body)})
                status, text, headers = owner.answers.pop(0) if owner.answers else (200, "ok", {})
                data = text.replace("{path}", self.path).encode()
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher().start()
    yield c
    assert c.server is not None
    c.server.shutdown()
    c.server.server_close()


def dead_url() -> str:
    """A loopback port nobody listens on: connection refused, every time."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{TOKEN_PATH}"


def secret(monkeypatch: pytest.MonkeyPatch, url: str) -> SecretRef:
    monkeypatch.setenv("HEMOSTAT_TEST_NOTIFY_URL", url)
    return SecretRef(env="HEMOSTAT_TEST_NOTIFY_URL")


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def update(**changes: Any) -> StatusUpdate:
    base = StatusUpdate("inc-20261127-0255-ab12", "checkout", "SEV-2 checkout: 40% of requests failing",
                        2, "Identified", "40% of checkout's requests failing", T0,
                        "Proposed rollback checkout (awaiting approval) <!channel>", T0 + timedelta(minutes=30),
                        T0 + timedelta(minutes=5))
    return StatusUpdate(**{**base.__dict__, **changes})


def run_notifier(notifier: Notifier, upd: StatusUpdate) -> list[Delivery]:
    return asyncio.run(notifier.deliver(upd))


# -- the status update ------------------------------------------------------------------------

def incident(status: str) -> IncidentRecord:
    return IncidentRecord("inc-1", "checkout", "SEV-2 checkout: 40% of requests failing", status, 2,
                          T0, T0 + timedelta(minutes=9))


def timeline() -> list[Event]:
    proposal = {"proposal": {"action": "rollback", "subject": "checkout",
                             "path": [{"branch": "recent deployment", "because": "deploy 3f2a9c4 at 02:51"}]},
                "verdict": {"decision": "needs_approval"}}
    return [
        Event(1, T0, "incident_opened", "alertmanager", "inc-1", data={"title": "checkout errors"}),
        Event(2, T0 + timedelta(minutes=1), "triaged", "hemostat", "inc-1",
              data={"severity": "SEV-3", "impact": ["10% of checkout's requests failing"]}),
        Event(3, T0 + timedelta(minutes=2), "triaged", "hemostat", "inc-1",
              data={"severity": "SEV-2", "impact": ["40% of checkout's requests failing"]}),
        Event(4, T0 + timedelta(minutes=2), "proposal", "hemostat", "inc-1", "p-1", data=proposal),
        Event(5, T0 + timedelta(minutes=8), "approval", "bob", "inc-1", "p-1", {"approvals": 1, "needed": 1}),
        Event(6, T0 + timedelta(minutes=8), "proposal_approved", "bob", "inc-1", "p-1", {"from": "proposed"}),
        Event(7, T0 + timedelta(minutes=9), "status_changed", "hemostat", "inc-1",
              data={"from": "identified", "to": "mitigating"}),
    ]


@pytest.mark.parametrize(("status", "label"), [
    ("opened", "Investigating"), ("triaged", "Investigating"), ("investigating", "Investigating"),
    ("identified", "Identified"), ("mitigating", "Identified"), ("monitoring", "Monitoring"),
    ("resolved", "Resolved"),
])
def test_incident_status_maps_to_the_playbook_label(status: str, label: str) -> None:
    assert status_update(incident(status), timeline(), T0, 30).status == label


def test_update_takes_impact_from_the_latest_triage_and_current_from_the_latest_step() -> None:
    now = T0 + timedelta(minutes=10)
    upd = status_update(incident("mitigating"), timeline(), now, 30)
    assert upd.impact == "40% of checkout's requests failing"
    assert upd.current == "rollback checkout is approved and about to be applied."
    assert upd.text() == (
        "Status: Identified\n"
        "Impact: 40% of checkout's requests failing\n"
        "Started: 2026-11-27 02:55 UTC\n"
        "Current status: rollback checkout is approved and about to be applied.\n"
        "Next update: 2026-11-27 03:35 UTC"
    )


def test_a_resolved_incident_promises_no_next_update() -> None:
    upd = status_update(incident("resolved"), timeline(), T0 + timedelta(hours=1), 30)
    assert upd.next_update_at is None
    assert upd.text().endswith("Next update: none: resolved")
    assert upd.current == "Resolved at 03:04 UTC."


def test_before_triage_the_impact_is_being_assessed() -> None:
    upd = status_update(incident("opened"), timeline()[:1], T0, 15)
    assert (upd.impact, upd.current) == ("being assessed", "Engineers are investigating.")


# -- delivery ---------------------------------------------------------------------------------

def test_slack_receives_text_and_blocks_with_the_template(catcher: Catcher,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    [channel] = channels_from([NotifierConfig(type="slack", url=secret(monkeypatch, catcher.url()))])
    [result] = run_notifier(Notifier([channel]), update())
    assert result == Delivery("slack#0", True, 1)
    [got] = catcher.received
    assert got["path"] == TOKEN_PATH and got["type"] == "application/json"
    body = got["json"]
    assert body == slack_payload(update())
    assert body["text"] == "Identified: SEV-2 checkout: 40% of requests failing"
    header, section, context = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert section["text"]["type"] == "mrkdwn"
    assert "*Status:* Identified\n*Impact:* 40% of checkout's requests failing" in section["text"]["text"]
    assert "&lt;!channel&gt;" in section["text"]["text"]  # ledger text cannot ping a channel
    assert context["elements"][0]["text"] == "inc-20261127-0255-ab12 · checkout"


def test_webhook_receives_the_update_as_json(catcher: Catcher, monkeypatch: pytest.MonkeyPatch) -> None:
    [channel] = channels_from([NotifierConfig(type="webhook", url=secret(monkeypatch, catcher.url("/hook")))])
    [result] = run_notifier(Notifier([channel]), update())
    assert result.ok
    assert catcher.received[0]["json"] == update().to_json()
    assert catcher.received[0]["json"]["next_update_at"] == "2026-11-27T03:25:00+00:00"


def test_every_channel_gets_the_update_concurrently(catcher: Catcher) -> None:
    out = io.StringIO()
    channels: list[Channel] = [HttpChannel("slack#0", _literal(catcher.url()), "slack"),
                               StdoutChannel("stdout#1", out)]
    results = run_notifier(Notifier(channels), update())
    assert [(r.channel, r.ok) for r in results] == [("slack#0", True), ("stdout#1", True)]
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == {"event": "status update", "channel": "stdout#1",
                                "headline": "SEV-2 checkout: 40% of requests failing", **update().to_json()}


def test_alert_text_cannot_forge_a_log_line_on_stdout() -> None:
    """The audit: a summary with a newline and a JSON object appeared as its own log line."""
    forged = 'x"}\n{"event": "FORGED proposal p-123 approved by admin", "level": "info"}\n'
    out = io.StringIO()
    run_notifier(Notifier([StdoutChannel("stdout#0", out)]), update(current=forged, title=forged))
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["current"] == forged  # the text is there, as a value
    assert not [event for event in map(json.loads, out.getvalue().splitlines())
                if str(event.get("event", "")).startswith("FORGED")]


def test_slack_text_cannot_ping_everyone_or_disguise_a_link() -> None:
    hostile = "<!channel> see <https://evil.example/x|the runbook> & <@U123>"
    payload = slack_payload(update(title=f"SEV-2 {hostile}", current=hostile, impact=hostile))
    text = json.dumps(payload)
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt;" in payload["text"] and "&amp;" in payload["blocks"][1]["text"]["text"]


def _literal(url: str) -> Any:
    class Literal:
        def resolve(self) -> str:
            return url
    return Literal()


def test_a_down_notifier_is_retried_with_backoff_then_reported_without_blocking_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sleep, reported = FakeSleep(), []
    notifier = Notifier([HttpChannel("slack#0", secret(monkeypatch, dead_url()), "slack", 1.0)],
                        on_result=lambda u, d: reported.append(d), sleep=sleep)

    async def scenario() -> bool:
        task = notifier.dispatch(update())
        returned_before_any_attempt = not task.done() and not reported
        await notifier.drain()
        return returned_before_any_attempt

    assert asyncio.run(scenario())
    [delivery] = reported
    assert (delivery.ok, delivery.attempts, delivery.code) == (False, 5, "notify_unreachable")
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]
    assert "s3cr3t" not in json.dumps(delivery.to_json()) and "127.0.0.1" not in str(delivery.error)


def test_backoff_doubles_up_to_its_cap_and_honours_retry_after() -> None:
    backoff = Backoff(attempts=10, base_s=1, max_s=60)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(1, hint_s=7) == 7 and backoff.delay(1, hint_s=600) == 60


def test_a_4xx_is_permanent_and_its_body_is_redacted(catcher: Catcher) -> None:
    catcher.answers.append((404, "no_service: unknown hook {path}", {}))
    sleep = FakeSleep()
    [result] = run_notifier(Notifier([HttpChannel("slack#0", _literal(catcher.url()), "slack")],
                                     sleep=sleep), update())
    assert (result.ok, result.attempts, result.code) == (False, 1, "notify_rejected")
    assert result.error is not None and result.error.startswith("HTTP 404: no_service: unknown hook")
    assert "s3cr3t-t0ken-xyz" not in result.error
    assert sleep.delays == []


def test_429_and_5xx_are_retried_and_retry_after_is_honoured(catcher: Catcher) -> None:
    catcher.answers += [(429, "rate_limited", {"Retry-After": "7"}), (503, "busy", {}), (200, "ok", {})]
    sleep = FakeSleep()
    [result] = run_notifier(Notifier([HttpChannel("webhook#0", _literal(catcher.url()))], sleep=sleep),
                            update())
    assert (result.ok, result.attempts) == (True, 3)
    assert sleep.delays == [7.0, 2.0]
    assert len(catcher.received) == 3


def test_a_missing_secret_is_permanent_and_names_only_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEMOSTAT_NO_SUCH_URL", raising=False)
    channel = HttpChannel("slack#0", SecretRef(env="HEMOSTAT_NO_SUCH_URL"), "slack")
    [result] = run_notifier(Notifier([channel], sleep=FakeSleep()), update())
    assert (result.ok, result.attempts, result.code) == (False, 1, "secret_missing")
    assert result.error == "secret env:HEMOSTAT_NO_SUCH_URL is not set"


def test_a_failing_result_callback_is_logged_not_raised(catcher: Catcher) -> None:
    def broken(u: StatusUpdate, d: Delivery) -> None:
        raise RuntimeError("ledger is down")

    notifier = Notifier([HttpChannel("webhook#0", _literal(catcher.url()))], on_result=broken)

    async def scenario() -> None:
        notifier.dispatch(update())
        await notifier.drain()

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert [entry["event"] for entry in logs] == ["notification result not recorded"]


def test_drain_cancels_deliveries_still_running_at_the_deadline() -> None:
    class Hanging:
        name = "hang#0"

        async def send(self, upd: StatusUpdate) -> None:
            await asyncio.Event().wait()

    notifier = Notifier([Hanging()])

    async def scenario() -> bool:
        task = notifier.dispatch(update())
        await notifier.drain(timeout_s=0)
        return task.cancelled()

    assert asyncio.run(scenario())
