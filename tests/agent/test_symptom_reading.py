"""How the executor reads a re-measured symptom: persisting only when measured after the change,
gone only when something measured after the change and saw none, unmeasured when a probe could
not look. With an injected clock and sleep (no real waiting)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.execution.symptom import read, remeasure
from agent.model import Finding, Observation, Rate, Severity

CHANGED = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
REFS = [("error_spike", "checkout")]


def spike(probe: str, at: datetime, window_s: float) -> Finding:
    return Finding(kind="error_spike", subject="checkout", severity=Severity.SEV2, observed_at=at,
                   summary=f"40% of requests failing ({probe})", probe=probe,
                   rate=Rate(0.4, "ratio", window_s, samples=500))


def ran(*probes: str, error: str | None = None) -> list[Observation]:
    return [Observation(p, "checkout", CHANGED, {}, error=error) for p in probes]


def test_a_spike_measured_after_the_change_persists() -> None:
    later = CHANGED + timedelta(seconds=30)
    reading = read(REFS, ran("app-metrics"), [spike("app-metrics", later, 2)], CHANGED)
    assert reading.gone is False and reading.detail.startswith("the symptom persists: 40%")


def test_old_log_lines_alone_cannot_tell_but_a_clean_fresh_probe_can() -> None:
    later = CHANGED + timedelta(seconds=30)
    logs = spike("k8s-logs", later, 900)  # a 15-minute log window: the old lines are still in it
    assert read(REFS, ran("k8s-logs"), [logs], CHANGED).gone is None
    both = read(REFS, ran("k8s-logs", "app-metrics"), [logs], CHANGED)
    assert both.gone is True and both.detail.endswith("(measured after the change by app-metrics)")


def test_a_probe_that_could_not_look_is_unmeasured_not_gone() -> None:
    assert read(REFS, ran("app-metrics", error="metrics endpoint unreachable"), [], CHANGED).gone is None


def test_remeasure_polls_until_the_settle_window_closes_then_says_why() -> None:
    clock = {"now": CHANGED}
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += timedelta(seconds=seconds)

    async def measure(probes: list[str] | None) -> tuple[list[Any], list[Any]]:
        return ran("app-metrics"), [spike("app-metrics", clock["now"] + timedelta(seconds=2), 2)]

    out = asyncio.run(remeasure(REFS, ["app-metrics"], measure, lambda: clock["now"], sleep, CHANGED,
                                settle_s=30, poll_s=10))
    assert not out.ok and out.facts == {"symptom": "persists", "checks": 4}
    assert slept == [10, 10, 10]
    assert out.detail.endswith("(30s after the change)")
