"""The Approve / Reject buttons a Slack status update carries for each pending proposal.

The notifier (agent.incidents.notify) puts them in the message; the daemon's Slack endpoint
(agent.server.slack_api) reads the `action_id`s back when someone presses one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.model.text import SECTION, slack_fit

APPROVE, REJECT = "hemostat_approve", "hemostat_reject"


def decision_blocks(pending: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """A line and Approve / Reject buttons per pending proposal (Slack allows 50 blocks: 20 max)."""
    blocks: list[dict[str, Any]] = []
    for pid, label in pending[:20]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": slack_fit(
            f"Waiting for approval: {label} ({pid})", SECTION)}})
        blocks.append({"type": "actions", "block_id": f"decide:{pid}", "elements": [
            _button("Approve", APPROVE, pid, "primary"), _button("Reject", REJECT, pid, "danger")]})
    return blocks


def _button(text: str, action_id: str, pid: str, style: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id,
            "value": pid, "style": style}
