"""The web incident view, served by the daemon under /ui/: the incidents, one incident's evidence,
proposals (plans, verdicts, Approve / Reject) and timeline, refreshed every few seconds.

Pages are rendered on the server (agent.server.web_pages) from the read API's documents,
fetched with the signed-in engineer's own bearer token (agent.server.web_sessions), so a page
shows exactly what `hemostat show --server` would show them. The buttons POST to /ui/approve and
/ui/reject, which check the session cookie, the page's CSRF token and the Origin from the
headers alone, then hand the request to the approval API as that engineer's bearer token: the
same TokenReview, SubjectAccessReview and policy approvers rule as `hemostat approve --server`.
Every answer carries a strict Content-Security-Policy (no inline script), `no-store`, and
refuses framing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import quote

import structlog

from agent.execution.identity_kube import AuthError
from agent.server import web_pages
from agent.server.approval_api import _bearer
from agent.server.http import Answer, Authorize, Head, Raw, Route
from agent.server.read_api import ReadApi
from agent.server.web_sessions import CODE_TTL_S, Session, Sessions, csrf_ok, set_cookie

log = structlog.get_logger("hemostat.web")
SESSIONS_PATH = "/v1/sessions"
UI = "/ui/"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY = (("Content-Security-Policy", CSP), ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# (verb, headers, body): the approval API
Decide = Callable[[str, Mapping[str, str], bytes], Awaitable[Answer]]


def html(status: int, text: str, *extra: tuple[str, str]) -> Answer:
    return status, Raw(text.encode(), "text/html; charset=utf-8", SECURITY + extra)


@dataclass
class WebView:
    reads: ReadApi
    decide: Decide
    vouched: Authorize  # the cluster vouches for the bearer token before any body is read
    sessions: Sessions = field(default_factory=Sessions)

    def routes(self) -> list[Route]:
        signed_in = self.authorize_post
        return [Route("POST", SESSIONS_PATH, self.sign_in, authorize=self.vouched, reads_body=True,
                      budget="reads"),
                Route("GET", UI, self.get, prefix=True, budget="reads"),
                Route("POST", "/ui/approve", self.post_approve, authorize=signed_in, reads_body=True,
                      budget="reads"),
                Route("POST", "/ui/reject", self.post_reject, authorize=signed_in, reads_body=True,
                      budget="reads"),
                Route("POST", "/ui/signout", self.sign_out, authorize=signed_in, budget="reads")]

    # -- sign-in ---------------------------------------------------------------------------------

    def sign_in(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """`hemostat ui`: the cluster vouches for the bearer token; answer a one-time sign-in link."""
        try:
            token = _bearer(headers)
            who, _ = self.reads.identities.authenticate(token)
        except AuthError as e:
            return e.status, {"error": str(e)}
        secure = headers.get("X-Forwarded-Proto", "").lower() == "https"
        code = self.sessions.issue_code(token, who.name, secure)
        if code is None:
            return 503, {"error": "too many web sessions open; retry when some expire"}
        log.info("web sign-in link issued", identity=who.describe())
        return 200, {"path": f"/ui/signin?code={quote(code)}", "expires_in_s": CODE_TTL_S,
                     "identity": who.to_json()}

    def _redeem(self, query: Mapping[str, str]) -> Answer:
        found = self.sessions.redeem(query.get("code", ""))
        if found is None:
            return html(401, web_pages.message("Sign-in link expired",
                                               "This link was used already or is over a minute old. "
                                               "Run `hemostat ui --server URL` again."))
        cookie, session = found
        return 303, Raw(b"", "text/plain", (*SECURITY, ("Location", UI),
                                            ("Set-Cookie", set_cookie(cookie, session))))

    def sign_out(self, headers: Mapping[str, str], body: bytes) -> Answer:
        self.sessions.end(headers)
        return 200, Raw(b"{}", "application/json", (*SECURITY, ("Set-Cookie", set_cookie("", None))))

    # -- pages -----------------------------------------------------------------------------------

    def get(self, headers: Mapping[str, str], body: bytes) -> Answer:
        path = str(getattr(headers, "path", UI))
        query: Mapping[str, str] = getattr(headers, "query", {})
        if path.startswith("/ui/static/"):
            return _asset(path.removeprefix("/ui/static/"))
        if path == "/ui/signin":
            return self._redeem(query)
        session = self.sessions.find(headers)
        if session is None:
            return html(401, web_pages.message("Sign in", "Sign in from a terminal with your cluster "
                                               "credential: hemostat ui --server URL"))
        if path == UI:
            filters = {k: v for k, v in query.items() if k in ("target", "severity", "since", "open")}
            status, doc = self._read(session, "/v1/incidents", filters)
            title = "Incidents"
        elif path.startswith("/ui/incidents/") and path.count("/") == 3:
            title = path.removeprefix("/ui/incidents/")
            status, doc = self._read(session, f"/v1/incidents/{title}", {})
        else:
            return html(404, web_pages.message("Not found", f"No page at {path[:100]}"))
        if status != 200:
            return html(status, web_pages.message(f"{status}", str(doc.get("error", ""))))
        content = web_pages.incident_list(doc, filters) if path == UI else web_pages.incident_detail(doc)
        return html(200, web_pages.page(f"{title} · Hemostat", content, who=session.name, csrf=session.csrf,
                                        live=True))

    def _read(self, session: Session, path: str, query: Mapping[str, str]) -> Answer:
        return self.reads.handle(Head({"Authorization": f"Bearer {session.token}"}, path, query))

    # -- decisions -------------------------------------------------------------------------------

    def authorize_post(self, headers: Mapping[str, str]) -> Answer | None:
        """Before the body: a live session, its CSRF token, and no foreign Origin."""
        session = self.sessions.find(headers)
        if session is None:
            return 401, {"error": "not signed in (or the session expired): run `hemostat ui --server URL`"}
        if not csrf_ok(session, headers):
            log.warning("web POST refused: CSRF token or origin", origin=headers.get("Origin", "")[:100])
            return 403, {"error": "missing or wrong CSRF token (reload the page)"}
        return None

    async def post_approve(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return await self._decide("approve", headers, body)

    async def post_reject(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return await self._decide("reject", headers, body)

    async def _decide(self, verb: str, headers: Mapping[str, str], body: bytes) -> Answer:
        session = self.sessions.find(headers)
        if session is None:  # expired between the check and now
            return 401, {"error": "session expired: run `hemostat ui --server URL`"}
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return 400, {"error": 'body must be JSON {"id": "p-...", "reason": "..."}'}
        forwarded = {"Authorization": f"Bearer {session.token}", "Content-Type": "application/json"}
        request = {"id": doc.get("id"), "reason": doc.get("reason")}
        return await self.decide(verb, forwarded, json.dumps(request).encode())


def _asset(name: str) -> Answer:
    if name not in ASSETS:
        return html(404, web_pages.message("Not found", "no such file"))
    data = resources.files("agent.server").joinpath("web_assets", name).read_bytes()
    return 200, Raw(data, ASSETS[name], (("Cache-Control", "no-cache"),
                                         ("X-Content-Type-Options", "nosniff")))
