"""Sign-in for the web view: an engineer's kubeconfig credential exchanged for a short-lived
browser session, held in the daemon's memory only.

`hemostat ui --server URL` POSTs the engineer's bearer token to `/v1/sessions`; the daemon has
the cluster vouch for it (TokenReview) and answers a one-time sign-in code valid for
`CODE_TTL_S`. The browser opens `/ui/signin?code=…`, which trades the code for a session
cookie (HttpOnly, SameSite=Strict, Max-Age `SESSION_TTL_S`; Secure behind https), so the link in
a terminal or a browser's history is worthless a minute later. The session keeps the bearer
token, in memory, so every page and every button goes through the same TokenReview and
SubjectAccessReview as the CLI (an expired token or revoked RBAC takes effect at once). Each
session has its own CSRF token, put in the page and required in `X-CSRF-Token` on every POST.

Only hashes of codes and cookies are kept as keys; nothing here is logged or written to disk. A
daemon restart (or another replica) signs everyone out: run `hemostat ui` again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.model.context import utcnow

COOKIE = "hemostat_session"
CODE_TTL_S = 60
SESSION_TTL_S = 3600
MAX_SESSIONS = 1000  # a bound on memory; past it, new sign-ins wait for old sessions to expire


@dataclass(frozen=True)
class Session:
    token: str  # the engineer's bearer token: sent to the cluster, never shown or logged
    name: str  # who the cluster said they are, for the page's header
    csrf: str
    expires: datetime
    secure: bool  # signed in over https: the cookie is Secure

    def __repr__(self) -> str:  # a session printed by accident must not show the token
        return f"Session(name={self.name!r}, expires={self.expires.isoformat()})"


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Sessions:
    clock: Callable[[], datetime] = utcnow
    ttl_s: float = SESSION_TTL_S
    _codes: dict[str, Session] = field(default_factory=dict)
    _live: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, token: str, name: str, secure: bool) -> str | None:
        """A one-time sign-in code for `token`; None when too many sessions are live."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._expire()
            if len(self._live) + len(self._codes) >= MAX_SESSIONS:
                return None
            self._codes[_key(code)] = Session(token, name, "", self.clock() + timedelta(seconds=CODE_TTL_S),
                                              secure)
        return code

    def redeem(self, code: str) -> tuple[str, Session] | None:
        """(cookie value, session) for a valid unused code; the code is spent either way."""
        with self._lock:
            self._expire()
            pending = self._codes.pop(_key(code), None)
            if pending is None:
                return None
            cookie = secrets.token_urlsafe(32)
            session = Session(pending.token, pending.name, secrets.token_urlsafe(24),
                              self.clock() + timedelta(seconds=self.ttl_s), pending.secure)
            self._live[_key(cookie)] = session
            return cookie, session

    def find(self, headers: Mapping[str, str]) -> Session | None:
        """The live session whose cookie the request carries."""
        value = cookie_value(headers.get("Cookie", ""), COOKIE)
        if not value:
            return None
        with self._lock:
            session = self._live.get(_key(value))
            if session is not None and session.expires <= self.clock():
                del self._live[_key(value)]
                return None
            return session

    def end(self, headers: Mapping[str, str]) -> None:
        value = cookie_value(headers.get("Cookie", ""), COOKIE)
        with self._lock:
            self._live.pop(_key(value or ""), None)

    def _expire(self) -> None:
        now = self.clock()
        for table in (self._codes, self._live):
            for key in [k for k, s in table.items() if s.expires <= now]:
                del table[key]


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def set_cookie(value: str, session: Session | None) -> str:
    """The Set-Cookie header: the session's (None: one that deletes it)."""
    max_age = int((session.expires - utcnow()).total_seconds()) if session else 0
    secure = "; Secure" if session is not None and session.secure else ""
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max(0, max_age)}{secure}"


def csrf_ok(session: Session, headers: Mapping[str, str]) -> bool:
    """The page's CSRF token in X-CSRF-Token, and no foreign Origin (defence in depth)."""
    sent = headers.get("X-CSRF-Token", "")
    origin, host = headers.get("Origin", ""), headers.get("Host", "")
    same_origin = not origin or origin.split("://", 1)[-1] == host
    return bool(sent) and hmac.compare_digest(sent, session.csrf) and same_origin
