"""The daemon's endpoints, one `Route` per line, and the HTTP limits taken from the config.

To add an endpoint, write `handle(headers, body) -> (status, answer)` in your own module
(synchronous handlers run in the server's worker threads; async ones on the loop) and add one
line to `routes()`. `authorize` sees the headers before any body byte is read: the approval API
and remote diagnoses authenticate the bearer token there (TokenReview, cached, with a deadline),
so a stranger's body is never read and holds nothing. Each endpoint class has its own budget
(agent.server.http.Limits.budgets): approvals, diagnoses, Slack and /metrics cannot starve the
webhook, and none of them runs in the webhook's threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agent.incidents.intake import IntakeError, authenticate
from agent.model import HemostatError
from agent.model.config import IntakeConfig
from agent.server.approval_api import MAX_BODY as APPROVAL_MAX_BODY
from agent.server.approval_api import ROUTES as APPROVAL_ROUTES
from agent.server.approval_api import authenticated
from agent.server.diagnose_api import MAX_BODY as DIAGNOSE_MAX_BODY
from agent.server.diagnose_api import ROUTE as DIAGNOSE_ROUTE
from agent.server.http import Answer, Limits, Raw, Route
from agent.server.read_api import ROUTES as READ_ROUTES
from agent.server.read_api import ReadApi
from agent.server.slack_api import MAX_BODY as SLACK_MAX_BODY
from agent.server.slack_api import SLACK_PATH
from agent.server.web import WebView

if TYPE_CHECKING:
    import asyncio

    from agent.diagnosis.wiring import App
    from agent.execution.identity_cache import ReviewCache
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
    wake: asyncio.Event
    slack: SlackInteractions | None
    diagnoses: DiagnoseApi | None
    watchdog: LoopWatchdog
    reviews: ReviewCache | None

    def ready(self) -> tuple[bool, str]: ...
    def receive_webhook(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]: ...
    def approval_api(self) -> ApprovalApi: ...

log = structlog.get_logger("hemostat.daemon")
WEBHOOK_PATH = "/webhook/alertmanager"


def routes(daemon: Daemon) -> list[Route]:
    table = [
        Route("GET", "/healthz", partial(healthz, daemon), budget=None),
        Route("GET", "/readyz", partial(readyz, daemon), budget=None),
        Route("GET", "/metrics", partial(metrics, daemon), budget="metrics"),
    ]
    if daemon.app.config.intake.webhook:  # off: 404 from the table, before any body is read
        table.append(Route("POST", WEBHOOK_PATH, partial(webhook, daemon),
                           authorize=partial(webhook_token, daemon), reads_body=True))
    if daemon.app.config.approval_api.enabled:
        check = partial(caller, daemon)
        table += [Route("POST", path, partial(approval, daemon, verb), authorize=check, reads_body=True,
                        budget="approvals", max_body_bytes=APPROVAL_MAX_BODY)
                  for path, verb in APPROVAL_ROUTES.items()]
        table.append(Route("POST", DIAGNOSE_ROUTE, partial(diagnose, daemon), authorize=check,
                           reads_body=True, budget="diagnose", max_body_bytes=DIAGNOSE_MAX_BODY))
        # reads (agent.server.read_api) and the web view (agent.server.web), as the caller's identity
        # (sync, in the reads budget's threads; each call deadlined by kubernetes.request_timeout_s)
        api = daemon.approval_api()
        reads = ReadApi(daemon.app, api.ledger, api.identities.identities)
        table += [Route("GET", path + under, reads.handle, authorize=check, prefix=bool(under),
                        budget="reads")
                  for path in READ_ROUTES for under in ("", "/")]
        table += WebView(reads, partial(approval, daemon), check).routes()
    config = daemon.app.config.slack
    if config is not None and config.listen is None:  # else on its own listener (slack_routes)
        table += slack_routes(daemon)[1:]
    return table


def slack_routes(daemon: Daemon) -> list[Route]:
    """Slack's signed Approve / Reject (agent.server.slack_api), with /healthz: the whole table of
    the listener `slack.listen` names, the one port that must be reachable from the internet.
    The signature covers the body, so it is read; Slack's own small budget bounds that."""
    if daemon.slack is None:
        return []
    return [Route("GET", "/healthz", partial(healthz, daemon), budget=None),
            Route("POST", SLACK_PATH, daemon.slack.handle, authorize=daemon.slack.authorize,
                  reads_body=True, budget="slack", max_body_bytes=SLACK_MAX_BODY)]


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


async def caller(daemon: Daemon, headers: Mapping[str, str]) -> Answer | None:
    """The approval API's and remote diagnoses' check before the body: a bearer token the
    cluster vouches for (TokenReview, through the daemon's cache and deadline), else 401 (503
    when the apiserver does not answer in time)."""
    if daemon.reviews is None or daemon.stopping.is_set():
        return 503, {"error": "not serving the API (starting or shutting down)"}
    return await authenticated(daemon.reviews, headers)


async def approval(daemon: Daemon, verb: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """The approval API (agent.server.approval_api), on the loop: never in the webhook's threads."""
    if not daemon.app.config.approval_api.enabled:
        return 404, {"error": "the approval API is off (approval_api.enabled: false)"}
    if daemon.stopping.is_set():
        return 503, {"error": "not serving approvals (starting or shutting down)"}
    answer = await daemon.approval_api().handle(verb, dict(headers), body)
    if verb == "approve" and answer[0] == 200:
        daemon.wake.set()  # the executor runs what is now approved at once, not at its next pass
    return answer


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
