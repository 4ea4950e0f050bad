"""Slack's Approve / Reject: requests signed with slack_sdk's own signer are acted on; forged,
stale, altered or unmapped ones are refused before anything is decided."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from agent.incidents.notify import slack_payload
from agent.incidents.status import StatusUpdate
from agent.model import HemostatError
from agent.model.config import SlackUser
from agent.server.slack_api import APPROVE, REJECT, SlackInteractions

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_764_470_000.0
ALICE = SlackUser(subject="alice@example.com", name="Alice", groups=["sre"])


def interaction(action_id: str = APPROVE, pid: str = "p-3f2a9c01", user: str = "U024ALICE") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "alice"},
               "actions": [{"action_id": action_id, "value": pid, "type": "button"}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, at: float = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(at))
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body) or ""}


class Recorder:
    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, str, str, SlackUser]] = []
        self.refuse = refuse

    def __call__(self, decision: str, pid: str, slack_id: str, user: SlackUser) -> str:
        if self.refuse:
            raise HemostatError(self.refuse)
        self.calls.append((decision, pid, slack_id, user))
        return f"{pid}: {decision}d by {user.name}"


@pytest.fixture
def decided() -> Recorder:
    return Recorder()


def endpoint(decide: Any) -> SlackInteractions:
    return SlackInteractions(SECRET, {"U024ALICE": ALICE}, decide, clock=lambda: NOW)


@pytest.mark.parametrize(("action_id", "decision"), [(APPROVE, "approve"), (REJECT, "reject")])
def test_a_signed_press_by_a_mapped_user_decides(decided: Recorder, action_id: str, decision: str) -> None:
    body = interaction(action_id)
    status, answer = endpoint(decided).handle(signed(body), body)
    assert status == 200 and answer == {"text": f"p-3f2a9c01: {decision}d by Alice"}
    assert decided.calls == [(decision, "p-3f2a9c01", "U024ALICE", ALICE)]


FORGERIES = {
    "signed with another secret": lambda b: (signed(b, secret="not-the-apps-secret"), b),
    "body changed after signing": lambda b: (signed(b), interaction(pid="p-00000bad")),
    "user changed after signing": lambda b: (signed(interaction(user="U0MALLORY")), b),
    "no signature": lambda b: ({"X-Slack-Request-Timestamp": str(int(NOW))}, b),
    "no timestamp": lambda b: ({"X-Slack-Signature": signed(b)["X-Slack-Signature"]}, b),
    "timestamp not a number": lambda b: ({**signed(b), "X-Slack-Request-Timestamp": "now"}, b),
    "signature without v0=": lambda b: ({**signed(b), "X-Slack-Signature": signed(b)["X-Slack-Signature"][3:]}, b),
    "timestamp moved after signing": lambda b: ({**signed(b), "X-Slack-Request-Timestamp": str(int(NOW) + 1)}, b),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_request_is_refused(decided: Recorder, forgery: str) -> None:
    headers, body = FORGERIES[forgery](interaction())
    status, answer = endpoint(decided).handle(headers, body)
    assert status == 401, answer
    assert decided.calls == []


def test_unsigned_and_stale_requests_are_refused_from_the_headers_alone(decided: Recorder) -> None:
    slack = endpoint(decided)
    assert slack.authorize(signed(b"", at=NOW - 600))[0] == 401  # type: ignore[index]
    assert slack.authorize({})[0] == 401  # type: ignore[index]
    assert slack.authorize(signed(b"anything")) is None  # the signature needs the body: checked later


@pytest.mark.parametrize(("signed_at", "says"), [(NOW - 301, "signed 301 s ago"), (NOW - 3600, "signed 3600 s ago"),
                                                 (NOW + 400, "signed -400 s ago")])
def test_a_stale_request_is_refused_even_when_signed_correctly(decided: Recorder, signed_at: float,
                                                                  says: str) -> None:
    body = interaction()
    status, answer = endpoint(decided).handle(signed(body, at=signed_at), body)
    assert status == 401 and "stale request" in answer["error"] and says in answer["error"]
    assert decided.calls == []


def test_a_request_just_inside_five_minutes_counts(decided: Recorder) -> None:
    body = interaction()
    assert endpoint(decided).handle(signed(body, at=NOW - 299), body)[0] == 200


def test_an_unmapped_slack_user_is_refused(decided: Recorder) -> None:
    body = interaction(user="U0MALLORY")
    status, answer = endpoint(decided).handle(signed(body), body)
    assert status == 403 and "U0MALLORY is not mapped" in answer["error"] and "slack.users" in answer["error"]
    assert decided.calls == []


@pytest.mark.parametrize("body", [b"payload=%7Bnot json", b"nothing=here", b"payload=%5B%5D",
                                  interaction(action_id="something_else"), interaction(pid="; DROP TABLE")])
def test_a_signed_but_malformed_payload_is_a_bad_request(decided: Recorder, body: bytes) -> None:
    status, _ = endpoint(decided).handle(signed(body), body)
    assert status == 400 and decided.calls == []


def test_a_body_that_is_not_utf8_is_a_bad_request(decided: Recorder) -> None:
    status, answer = endpoint(decided).handle(signed(b"x"), b"payload=\xff\xfe")
    assert status == 400 and "UTF-8" in answer["error"] and decided.calls == []


def test_a_refusal_by_the_policy_is_reported_to_slack() -> None:
    body = interaction()
    status, answer = endpoint(Recorder(refuse="policy says no")).handle(signed(body), body)
    assert status == 409 and answer == {"error": "policy says no"}


def update(pending: tuple[tuple[str, str], ...]) -> StatusUpdate:
    at = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    return StatusUpdate("inc-1", "checkout", "SEV-2 checkout", 2, "Identified", "errors", at,
                        "Proposed rollback", at, at, pending=pending)


def test_status_updates_carry_buttons_for_each_pending_proposal() -> None:
    payload = slack_payload(update((("p-3f2a9c01", "rollback checkout <!channel>"),)), buttons=True)
    actions = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    assert [(e["action_id"], e["value"], e["style"]) for e in actions[0]["elements"]] == [
        (APPROVE, "p-3f2a9c01", "primary"), (REJECT, "p-3f2a9c01", "danger")]
    assert "&lt;!channel&gt;" in json.dumps(payload["blocks"])


def test_no_buttons_without_interactions_or_pending_proposals() -> None:
    assert not [b for b in slack_payload(update((("p-1", "x"),)))["blocks"] if b["type"] == "actions"]
    assert not [b for b in slack_payload(update(()), buttons=True)["blocks"] if b["type"] == "actions"]
