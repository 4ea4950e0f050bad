"""Slack end to end against the real daemon on loopback: the status update carries Approve /
Reject for the proposal; a press signed with slack_sdk's signer approves it as the mapped
identity; forged, stale and unmapped presses change nothing."""

from __future__ import annotations

import json
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from slack_sdk.signature import SignatureVerifier

from tests.agent.daemon_harness import (
    TOKEN,
    DaemonProcess,
    _send,
    alert_payload,
    daemon_config,
    now_iso,
    start_daemon,
    wait_until,
)
from tests.agent.test_daemon import _incident
from tests.loopback import LoopbackServer

SECRET = "e3b0c44298fc1c149afbf4c8996fb924"
HOOK = "/services/T1/B2/slack-hook"


def press(daemon: DaemonProcess, pid: str, user: str = "U024ALICE", action: str = "hemostat_approve",
          signed_at: float | None = None, secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    payload = {"type": "block_actions", "user": {"id": user},
               "actions": [{"action_id": action, "value": pid, "type": "button"}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(signed_at if signed_at is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body) or ""
    request = urllib.request.Request(daemon.url + "/slack/interactions", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature})
    return _send(request)


def buttons(loopback: LoopbackServer) -> list[str]:
    """The proposal ids on Approve buttons in what reached the Slack webhook."""
    blocks = [b for raw in loopback.posts.get(HOOK, []) for b in json.loads(raw)["blocks"]]
    return [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == "hemostat_approve"]


def test_approve_from_slack_as_the_mapped_identity(tmp_path: Path, loopback: LoopbackServer,
                                                   deploy_repo: Path) -> None:
    (tmp_path / "slack-secret").write_text(SECRET)
    config = daemon_config(tmp_path, loopback, deploy_repo,
                     notifiers=[{"type": "slack", "url": {"env": "HEMOSTAT_TEST_SLACK_URL"}}],
                     slack={"signing_secret": {"file": str(tmp_path / "slack-secret")},
                            "users": {"U024ALICE": {"subject": "alice@example.com", "name": "Alice"}}})
    daemon = start_daemon(config, {"HEMOSTAT_TEST_SLACK_URL": loopback.route(HOOK, body="ok")})
    try:
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
        incident = _incident(daemon, "identified")
        pid = wait_until(lambda: (buttons(loopback) or [None])[0])
        ledger = daemon.ledger()
        assert ledger.proposal(pid).state == "proposed" and ledger.proposal(pid).proposal.incident_id == incident.id

        assert press(daemon, pid, secret="someone-elses-secret")[0] == 401
        assert press(daemon, pid, signed_at=time.time() - 600)[0] == 401
        status, answer = press(daemon, pid, user="U0MALLORY")
        assert status == 403 and "not mapped" in answer["error"]
        assert ledger.proposal(pid).approvals == ()

        status, answer = press(daemon, pid)
        assert status == 200, answer
        assert "approved by Alice (1/1)" in answer["text"]
        (approval,) = ledger.proposal(pid).approvals
        assert (approval.identity.source, approval.identity.subject, approval.identity.uid) == (
            "slack", "alice@example.com", "U024ALICE")
        status, answer = press(daemon, pid)  # a second press (or a replay within 5 min) adds nothing
        assert status == 409 and len(ledger.proposal(pid).approvals) == 1
    finally:
        daemon.stop(signal.SIGKILL)
    assert SECRET not in daemon.log.read_text()
