"""app-metrics: a real Prometheus endpoint on loopback whose counters move between scrapes."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from agent.model import MetricsSpec, Observation, PermanentError, TargetSpec
from agent.model.context import ProbeContext
from probes.app_metrics import AppMetricsProbe, sum_counters
from tests.loopback import LoopbackServer

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _exposition(requests: int, errors: int) -> str:
    return ("# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200"}} {requests - errors}\n'
            f'http_requests_total{{code="500"}} {errors}\n'
            "# TYPE http_requests_errors_total counter\n"
            f'http_requests_errors_total{{route="/pay"}} {errors}\n')


def _counters(*pairs: tuple[int, int]) -> object:
    it = itertools.chain(pairs, itertools.repeat(pairs[-1]))
    return lambda: _exposition(*next(it))


def _run(url: str) -> tuple[Observation, list]:  # type: ignore[type-arg]
    target = TargetSpec(name="checkout", deployment="checkout",
                        metrics=MetricsSpec(url=url, scrape_interval_s=0.05))  # type: ignore[arg-type]
    probe = AppMetricsProbe()
    data = asyncio.run(probe.collect(target, ProbeContext()))
    obs = Observation(probe.name, target.name, NOW, data)
    return obs, probe.analyze(obs, target, NOW)


def test_errors_climbing_between_scrapes_is_an_error_spike(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", body=_counters((1000, 10), (1200, 90)))
    _, [finding] = _run(url)
    assert finding.kind == "error_spike" and finding.subject == "checkout"
    assert finding.facts["errors"] == 80 and finding.facts["requests"] == 200
    assert finding.facts["ratio"] == 0.4
    assert finding.summary.startswith("40% of requests failing")
    assert finding.severity.label() == "SEV-2"


def test_most_requests_failing_is_sev1(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", body=_counters((1000, 10), (1100, 100)))
    _, [finding] = _run(url)
    assert finding.severity.label() == "SEV-1"


def test_steady_low_error_rate_is_not_a_finding(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", body=_counters((1000, 10), (2000, 11)))
    _, findings = _run(url)
    assert findings == []


def test_counter_reset_after_restart_counts_from_zero(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", body=_counters((50000, 500), (100, 60)))
    _, [finding] = _run(url)
    assert finding.facts["errors"] == 60 and finding.facts["requests"] == 100


def test_garbage_metrics_is_a_clear_error(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", body="<html>login</html>{{{")
    with pytest.raises(PermanentError, match="not Prometheus text format"):
        _run(url)


def test_metrics_endpoint_500_is_a_clear_error(loopback: LoopbackServer) -> None:
    url = loopback.route("/metrics", status=500)
    with pytest.raises(PermanentError, match="metrics endpoint answered HTTP 500"):
        _run(url)


def test_sum_counters_adds_every_label_set_and_ignores_other_metrics() -> None:
    text = _exposition(1000, 40) + "# TYPE other_total counter\nother_total 7\n"
    assert sum_counters(text, ["http_requests_total"]) == 1000
    assert sum_counters(text, ["http_requests_errors_total"]) == 40
    assert sum_counters(text, ["missing_total"]) is None
