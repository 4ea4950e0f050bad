"""The daemon's endpoints, one `Route` per line, and the HTTP limits taken from the config.

To add an endpoint, write `handle(headers, body) -> (status, answer)` in your own module
(synchronous handlers run in the server's worker threads; async ones on the loop) and add one
line to `routes()`. `authorize` sees the headers before any body byte is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agent.incidents.intake import IntakeError, authenticate
from agent.model import HemostatError
from agent.model.config import IntakeConfig
from agent.server.approval_api import ROUTES as APPROVAL_ROUTES
from agent.server.approval_api import bearer_present
from agent.server.diagnose_api import ROUTE as DIAGNOSE_ROUTE
from agent.server.http import Answer, Limits, Raw, Route
from agent.server.read_api import ROUTES as READ_ROUTES
from agent.server.read_api import ReadApi
from agent.server.slack_api import SLACK_PATH
from agent.server.web import WebView

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine

    from agent.diagnosis.wiring import App
    from agent.server.approval_api import ApprovalApi
    from agent.server.diagnose_api import DiagnoseApi
    from agent.server.metrics import Metrics
    from agent.server.slack_api import SlackInteractions
    from agent.server.watchdog import LoopWatchdog


class Daemon(Protocol):
    """What the endpoints need of the daemon (agent.server.daemon builds the table with itself)."""

    app: App
    metrics: Metrics
    stopping: asyncio.Event
    slack: SlackInteractions | None
    diagnoses: DiagnoseApi | None
    watchdog: LoopWatchdog

    def ready(self) -> tuple[bool, str]: ...
    def receive_webhook(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]: ...
    def approval_api(self) -> ApprovalApi: ...
    def on_loop(self, work: Callable[[], Coroutine[Any, Any, tuple[int, dict[str, Any]]]], what: str,
                timeout_s: float) -> tuple[int, dict[str, Any]]: ...

log = structlog.get_logger("hemostat.daemon")
WEBHOOK_PATH = "/webhook/alertmanager"


def routes(daemon: Daemon) -> list[Route]:
    table = [
        Route("GET", "/healthz", partial(healthz, daemon), limited=False),
        Route("GET", "/readyz", partial(readyz, daemon), limited=False),
        Route("GET", "/metrics", partial(metrics, daemon)),
    ]
    if daemon.app.config.intake.webhook:  # off: 404 from the table, before any body is read
        table.append(Route("POST", WEBHOOK_PATH, partial(webhook, daemon),
                           authorize=partial(webhook_token, daemon), reads_body=True))
    if daemon.app.config.approval_api.enabled:
        table += [Route("POST", path, partial(approval, daemon, verb), authorize=bearer_present,
                        reads_body=True)
                  for path, verb in APPROVAL_ROUTES.items()]
        table.append(Route("POST", DIAGNOSE_ROUTE, partial(diagnose, daemon), authorize=bearer_present,
                           reads_body=True))
        # reads (agent.server.read_api) and the web view (agent.server.web), as the caller's identity
        reads = ReadApi(daemon.app, daemon.approval_api().ledger, daemon.approval_api().identities)
        table += [Route("GET", path + under, reads.handle, authorize=bearer_present, prefix=bool(under))
                  for path in READ_ROUTES for under in ("", "/")]
        table += WebView(reads, partial(approval, daemon)).routes()
    if daemon.slack is not None:  # Slack's signed Approve / Reject (agent.server.slack_api)
        table.append(Route("POST", SLACK_PATH, daemon.slack.handle, authorize=daemon.slack.authorize,
                           reads_body=True))
    return table


def limits(intake: IntakeConfig, drain_s: float) -> Limits:
    return Limits(header_timeout_s=intake.header_timeout_s, body_timeout_s=intake.body_timeout_s,
                  max_body_bytes=intake.max_body_bytes, max_connections=intake.max_connections,
                  max_inflight=intake.max_inflight, drain_s=drain_s)


def webhook_token(daemon: Daemon, headers: Mapping[str, str]) -> Answer | None:
    """The bearer token, checked from the headers alone: a stranger's body is never read."""
    token_ref = daemon.app.config.intake.token
    try:
        authenticate(headers.get("Authorization"), token_ref.resolve() if token_ref else None)
    except IntakeError as e:
        daemon.metrics.webhooks.labels(result=str(e.status)).inc()
        return e.status, {"error": str(e)}
    except HemostatError as e:  # the token Secret is unreadable: a retry may find it mounted
        log.error("webhook token unreadable", error=str(e))
        return 503, {"error": "intake token unavailable; retry"}
    return None


def webhook(daemon: Daemon, headers: Mapping[str, str], body: bytes) -> Answer:
    return daemon.receive_webhook(body, headers.get("Authorization"))


APPROVAL_TIMEOUT_S = 150  # TokenReview + SubjectAccessReview + a revert's verify at most


def approval(daemon: Daemon, verb: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """The approval API (agent.server.approval_api): its own TokenReview authenticates the caller."""
    if not daemon.app.config.approval_api.enabled:
        return 404, {"error": "the approval API is off (approval_api.enabled: false)"}
    return daemon.on_loop(lambda: daemon.approval_api().handle(verb, dict(headers), body), "approvals",
                          APPROVAL_TIMEOUT_S)


async def diagnose(daemon: Daemon, headers: Mapping[str, str], body: bytes) -> Answer:
    """`hemostat diagnose TARGET --server URL` (agent.server.diagnose_api), authenticated like approvals.
    On the loop, not in a worker thread: a diagnosis waits on its probes for seconds, and the
    server's few threads are for the webhook, approvals, /readyz and /metrics."""
    api = daemon.diagnoses
    if api is None or daemon.stopping.is_set():
        return 503, {"error": "not serving diagnoses (starting or shutting down)"}
    return await api.handle(dict(headers), body)


async def healthz(daemon: Daemon, headers: Mapping[str, str], body: bytes) -> Answer:
    ok, why = daemon.watchdog.health()
    return (200 if ok else 503), {"status": why}


def readyz(daemon: Daemon, headers: Mapping[str, str], body: bytes) -> Answer:
    ok, why = daemon.ready()
    return (200 if ok else 503), {"status": why}


def metrics(daemon: Daemon, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
    text, content_type = daemon.metrics.exposition()
    return 200, Raw(text, content_type)
