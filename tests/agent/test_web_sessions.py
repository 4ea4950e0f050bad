"""The web view's sessions over time, with an injected clock: a sign-in link expires after a
minute and works once; a session ends at its expiry; the cookie's attributes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.server.web_sessions import CODE_TTL_S, COOKIE, Sessions, csrf_ok, set_cookie


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_sign_in_link_works_once_and_not_after_a_minute() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    code = sessions.issue_code("secret-token", "alice", secure=False)
    assert code is not None
    redeemed = sessions.redeem(code)
    assert redeemed is not None and redeemed[1].name == "alice"
    assert sessions.redeem(code) is None  # spent
    late = sessions.issue_code("secret-token", "alice", secure=False)
    assert late is not None
    clock.now += timedelta(seconds=CODE_TTL_S + 1)
    assert sessions.redeem(late) is None


def test_a_session_ends_at_its_expiry_and_on_sign_out() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock, ttl_s=3600)
    code = sessions.issue_code("secret-token", "alice", secure=True)
    assert code is not None
    found = sessions.redeem(code)
    assert found is not None
    cookie, session = found
    headers = {"Cookie": f"other=1; {COOKIE}={cookie}"}
    assert sessions.find(headers) == session
    assert "secret-token" not in repr(session)  # a stray log line shows no credential
    clock.now += timedelta(seconds=3599)
    assert sessions.find(headers) == session
    clock.now += timedelta(seconds=2)
    assert sessions.find(headers) is None
    code = sessions.issue_code("secret-token", "alice", secure=True)
    assert code is not None
    found = sessions.redeem(code)
    assert found is not None
    sessions.end({"Cookie": f"{COOKIE}={found[0]}"})
    assert sessions.find({"Cookie": f"{COOKIE}={found[0]}"}) is None


def test_the_cookie_is_httponly_strict_and_secure_over_https_and_csrf_needs_the_token() -> None:
    sessions = Sessions()
    code = sessions.issue_code("t", "alice", secure=True)
    assert code is not None
    found = sessions.redeem(code)
    assert found is not None
    cookie, session = found
    header = set_cookie(cookie, session)
    assert "; HttpOnly; SameSite=Strict; Max-Age=" in header and header.endswith("; Secure")
    assert set_cookie("", None).endswith("Max-Age=0")
    assert csrf_ok(session, {"X-CSRF-Token": session.csrf, "Host": "h:1", "Origin": "http://h:1"})
    assert not csrf_ok(session, {"X-CSRF-Token": session.csrf, "Host": "h:1", "Origin": "http://evil"})
    assert not csrf_ok(session, {"X-CSRF-Token": "", "Host": "h:1"})
