"""Text for other systems' markup: escaping as Slack asks. Used by the Slack notifier
(agent.incidents) and Slack's interactive answers (agent.server); imports nothing of Hemostat."""

from __future__ import annotations


def slack_escape(text: str) -> str:
    """Slack reads & < > as markup (`<!channel>` pings everyone, `<https://evil|docs>` is a link
    that hides where it goes), so ledger text is escaped as Slack asks: only these three."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
