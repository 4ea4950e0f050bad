"""Approve / Reject from Slack: the buttons on a status update, and the endpoint Slack calls
when someone presses one.

`decision_blocks` adds the buttons (agent.incidents.notify, when `slack` is configured). The daemon mounts
`SlackInteractions.handle(headers, body) -> (status, json)` at SLACK_PATH; it is plain code, not
tied to an HTTP framework. A request counts only if slack_sdk's SignatureVerifier accepts its
signature with the app's signing secret, and its timestamp is within five minutes (Slack's
rule; it stops replays of a captured request); then only a Slack user mapped in `slack.users`
may decide, as the identity configured there. The decision itself (`Decide`) is the daemon's:
the same policy checks as every other approval path.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.incidents.slack_blocks import APPROVE, REJECT
from agent.model import HemostatError, truncate

if TYPE_CHECKING:
    from datetime import datetime

    from agent.execution.identity import Approving
    from agent.ledger import Ledger, ProposalRecord
    from agent.model.config import SlackUser

SLACK_PATH = "/slack/interactions"
MAX_AGE_S = 300  # Slack's own limit for a signed request
MAX_BODY = 64 * 1024  # one block_actions payload; the signature needs the body, so it is read
UNIX_TIME = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() accepts "²"
PROPOSAL_ID = re.compile(r"p-[0-9a-z-]{1,64}")
Decide = Callable[[str, str, str, "SlackUser"], str]  # (approve|reject, proposal, slack id, user) -> message


class Refused(HemostatError):
    """An interaction that is not acted on; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SlackInteractions:
    """Verifies and acts on Slack's interaction requests."""

    signing_secret: str
    users: Mapping[str, SlackUser]
    decide: Decide
    clock: Callable[[], float] = time.time

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one POST from Slack: (HTTP status, JSON body). Never raises."""
        try:
            self.verify(headers, body)
            decision, pid, user_id = _action(_payload(body))
            user = self.users.get(user_id)
            if user is None:
                raise Refused(403, f"Slack user {user_id} is not mapped to an identity in "
                                   "slack.users, so their decision is refused")
            return 200, {"text": self.decide(decision, pid, user_id, user)}
        except Refused as e:
            return e.status, {"error": str(e)}
        except HemostatError as e:  # the policy or the ledger said no: tell the person why
            return 409, {"error": truncate(str(e), 500)}

    def authorize(self, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The header checks alone, for a server that refuses before reading the body."""
        try:
            self._signed_headers(headers)
        except Refused as e:
            return e.status, {"error": str(e)}
        return None

    def _signed_headers(self, headers: Mapping[str, str]) -> tuple[str, str]:
        """(timestamp, signature), refusing a request unsigned or signed over 5 minutes off."""
        lowered = {k.lower(): v for k, v in headers.items()}
        stamp, signature = lowered.get("x-slack-request-timestamp"), lowered.get("x-slack-signature")
        if not stamp or not signature:
            raise Refused(401, "not signed by Slack (X-Slack-Signature and "
                               "X-Slack-Request-Timestamp are required)")
        if not UNIX_TIME.fullmatch(stamp):
            raise Refused(401, "X-Slack-Request-Timestamp is not a Unix time")
        age = self.clock() - int(stamp)
        if abs(age) > MAX_AGE_S:
            raise Refused(401, f"stale request: signed {int(age)} s ago, more than {MAX_AGE_S} s "
                               "(a replay, or this host's clock is off)")
        return stamp, signature

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise Refused(401) unless Slack signed this body with our secret in the last 5 min."""
        from slack_sdk.signature import Clock, SignatureVerifier

        stamp, signature = self._signed_headers(headers)
        try:
            body.decode()
        except UnicodeDecodeError:
            raise Refused(400, "the body is not UTF-8, so Slack did not send it") from None
        clock = type("_Clock", (Clock,), {"now": lambda _self: self.clock()})()
        if not SignatureVerifier(self.signing_secret, clock).is_valid(body, stamp, signature):
            raise Refused(401, "bad signature: not signed with this app's signing secret")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        form = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError) as e:
        raise Refused(400, f"not a Slack interaction payload ({type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise Refused(400, "not a Slack interaction payload (payload is not an object)")
    return payload


def _action(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(approve|reject, proposal id, Slack user id) from a block_actions payload."""
    if payload.get("type") != "block_actions":
        raise Refused(400, f"unsupported interaction type {str(payload.get('type'))[:40]!r}")
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise Refused(400, "expected exactly one action")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise Refused(400, "the payload names no user")
    action_id, pid = actions[0].get("action_id"), actions[0].get("value")
    if action_id not in (APPROVE, REJECT):
        raise Refused(400, f"unknown action {str(action_id)[:40]!r}")
    if not isinstance(pid, str) or not PROPOSAL_ID.fullmatch(pid):
        raise Refused(400, "the button carries no proposal id")
    return ("approve" if action_id == APPROVE else "reject"), pid, user["id"]


def ledger_decider(ledger: Ledger, rules: Approving, now: Callable[[], datetime],
                   on_decided: Callable[[ProposalRecord], None]) -> Decide:
    """The daemon's `Decide`: as the mapped identity (source `slack`, the Slack member ID as its
    uid), through the same policy check as every approval path (agent.execution.identity.give_approval)."""
    from agent.execution.identity import approved_message, give_approval
    from agent.model.identity import Identity

    def decide(decision: str, pid: str, slack_id: str, user: SlackUser) -> str:
        who = Identity("slack", user.subject, user.name, tuple(user.groups), uid=slack_id)
        if decision == "approve":
            record = give_approval(rules, ledger, pid, who, now())
            message = approved_message(record, who.name)
        else:
            record = ledger.transition(pid, "rejected", who.name, now(), {
                "reason": f"rejected in Slack by {who.name}", "identity": who.to_json()})
            what = f"{record.id} {record.proposal.action} {record.proposal.subject}"
            message = f"{what}: rejected by {who.name}"
        on_decided(record)
        return message
    return decide
