"""Slack within Block Kit's limits: text is escaped first and then cut, never inside an entity
or a word; a status update Slack refuses with a 400 still goes out as plain text."""

from __future__ import annotations

import json
import re

from structlog.testing import capture_logs

from agent.incidents.notify import HttpChannel, Notifier, slack_payload
from agent.incidents.slack_blocks import decision_blocks
from agent.model.text import HEADER, SECTION, slack_cut, slack_fit
from tests.agent.test_notify import Catcher, _literal, catcher, run_notifier, update

__all__ = ["catcher"]  # the fixture, used by name
ENTITY_CUT = re.compile(r"&(a|am|amp|l|lt|g|gt)?…")


def test_the_header_is_escaped_then_cut_to_150_characters() -> None:
    title = "SEV-2 " + " & ".join(["R&D <checkout>"] * 40)  # 600 characters; escaping triples it
    payload = slack_payload(update(title=title))
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER  # was 415: cut to 150, then escaped
    assert header.endswith("…") and not ENTITY_CUT.search(header)
    assert "<" not in header and "&lt;checkout&gt;" in header


def test_a_cut_never_lands_inside_an_entity_or_a_word() -> None:
    for limit in range(5, 40):
        cut = slack_fit("a & b <c> deployment&more words here & there <x>", limit)
        assert len(cut) <= limit
        assert not re.search(r"&[a-z]*…", cut) or re.search(r"&(amp|lt|gt);", cut[-7:]), cut
        assert not re.search(r"&(?!amp;|lt;|gt;)", cut), cut
    assert slack_cut("checkout deployment failing", 18) == "checkout…"
    assert slack_cut("checkout deployment failing", 20) == "checkout deployment…"
    assert slack_fit("short & sweet", 100) == "short &amp; sweet"


def test_the_section_and_the_buttons_stay_within_their_limit() -> None:
    payload = slack_payload(update(current="&" * 5000, impact="<x>" * 2000))
    section = payload["blocks"][1]["text"]["text"]
    assert len(section) <= SECTION and not re.search(r"&(?!amp;|lt;|gt;)", section)
    [line, _] = decision_blocks([("p-1", "rollback " + "&" * 4000)])
    assert len(line["text"]["text"]) <= SECTION and line["text"]["text"].endswith("…")
    assert not re.search(r"&(?!amp;|lt;|gt;)", line["text"]["text"])


def test_a_400_falls_back_to_plain_text_and_says_so(catcher: Catcher) -> None:
    catcher.answers.append((400, "invalid_blocks", {}))
    with capture_logs() as logs:
        [result] = run_notifier(Notifier([HttpChannel("slack#0", _literal(catcher.url()), "slack")]),
                                update())
    assert result.ok
    first, second = (r["json"] for r in catcher.received)
    assert "blocks" in first and set(second) == {"text"}
    assert second["text"].startswith("Identified: SEV-2 checkout: 40% of requests failing")
    assert "&lt;!channel&gt;" in second["text"] and "<!channel>" not in json.dumps(second)
    [warning] = [e for e in logs if e["event"].startswith("slack refused the blocks")]
    assert warning["incident_id"] == "inc-20261127-0255-ab12" and warning["answer"] == "invalid_blocks"


def test_a_400_to_the_plain_text_too_is_permanent(catcher: Catcher) -> None:
    catcher.answers += [(400, "invalid_blocks", {}), (400, "no_text", {})]
    [result] = run_notifier(Notifier([HttpChannel("slack#0", _literal(catcher.url()), "slack")]), update())
    assert (result.ok, result.code) == (False, "notify_rejected")
    assert result.error is not None and "no_text" in result.error
