"""When an error signature began: the minute its rate rose above its own background, not its
first line.

An app's usual trickle ("Broken pipe" once a minute since 02:32) is background; the failure's
own signature may start at 02:41, or an old signature may jump from 1 to 50 lines a minute then.
From each group's lines per minute (probes/log_groups.py) a signature is one of:

- `rose`: the split of its timeline where the rate after is at least RISE times the rate before
  and at least the spike rate (the largest such jump wins): its onset is that minute;
- `began`: no background before it, and it reaches the spike rate: its onset is its first line;
- `background`: it never reaches the spike rate: it says nothing about when the trouble began.

The finding's onset is the earliest `rose`/`began` among the top groups; only when every group
is background does the first matching line stand in (with that said).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

RISE = 3.0  # a rate this many times its background is a rise


def _minute(text: str) -> datetime:
    return datetime.strptime(text[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)


def _series(per_minute: dict[str, int]) -> list[tuple[datetime, int]]:
    """Lines per minute from the first to the last, gaps as zeros."""
    counts = {_minute(m): n for m, n in per_minute.items()}
    start, end = min(counts), max(counts)
    steps = int((end - start).total_seconds() // 60) + 1
    return [(start + timedelta(minutes=i), counts.get(start + timedelta(minutes=i), 0)) for i in range(steps)]


def signature_onset(per_minute: dict[str, int] | None,
                    spike_per_min: float) -> tuple[str, datetime | None, str]:
    """(rose | began | background | unknown, the onset, the words for it)."""
    if not per_minute:
        return "unknown", None, ""
    series = _series(per_minute)
    best: tuple[float, int, float, float] | None = None
    for i in range(1, len(series)):
        before = sum(n for _, n in series[:i]) / i
        after = sum(n for _, n in series[i:]) / (len(series) - i)
        if after >= spike_per_min and after >= RISE * max(before, 1e-9) and series[i][1] > before:
            jump = after - before
            if best is None or jump > best[0]:
                best = (jump, i, before, after)
    if best is not None:
        _, i, before, after = best
        return "rose", series[i][0], (f"when its rate rose above its own background "
                                      f"({before:.1f}/min before, {after:.1f}/min after)")
    if max(n for _, n in series) >= spike_per_min:
        return "began", series[0][0], "first matching log line"
    return "background", None, ""


def onset_of(groups: list[dict[str, Any]], spike_per_min: float) -> tuple[datetime | None, str]:
    """The earliest rise or beginning among the groups, with what it was read from; (None, "")
    when every group is background or has no timeline."""
    read = [signature_onset(g.get("per_minute"), spike_per_min) for g in groups]
    found = [(at, kind, words) for kind, at, words in read if kind in ("rose", "began") and at is not None]
    if not found:
        return None, ""
    at, kind, words = min(found, key=lambda item: item[0])
    if kind == "began":
        earlier = any(k == "background" for k, _, _ in read)
        words = "first line of the failing signature; the lines before it are background" if earlier \
            else "first matching log line"
    return at, words
