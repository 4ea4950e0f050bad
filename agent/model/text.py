"""Text for other systems' markup: escaping as Slack asks. Used by the Slack notifier
(agent.incidents) and Slack's interactive answers (agent.server); imports nothing of Hemostat."""

from __future__ import annotations

# Block Kit's limits, in characters of the text as sent (escaped): a header's plain_text, a
# section's mrkdwn, a context element's, and the message's top-level fallback text.
HEADER, SECTION, CONTEXT, FALLBACK = 150, 3000, 2000, 3000


def slack_escape(text: str) -> str:
    """Slack reads & < > as markup (`<!channel>` pings everyone, `<https://evil|docs>` is a link
    that hides where it goes), so ledger text is escaped as Slack asks: only these three."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_cut(escaped: str, limit: int) -> str:
    """An already escaped text cut to at most `limit` characters, marked with "…": never inside
    an entity (`&amp;` stays whole or goes whole) and at a space when there is one in the last
    two thirds, so a word is not cut either."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[:max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    space = cut.rfind(" ")
    if escaped[len(cut)] != " " and space > len(cut) // 3:  # mid-word: back to the last space
        cut = cut[:space]
    return cut.rstrip(" ,:") + "…"


def slack_fit(text: str, limit: int) -> str:
    """`text` escaped for Slack, then cut to `limit` (escaping first: `&` becomes five characters,
    so cutting first can overrun Slack's limit, and cutting after can split an entity)."""
    return slack_cut(slack_escape(text), limit)
