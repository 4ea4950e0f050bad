"""http-health: real HTTP servers on loopback, including one that hangs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agent.diagnosis.registry import Registry
from agent.diagnosis.runner import collect_all
from agent.model import DependencySpec, Observation, TargetSpec, Thresholds
from agent.model.context import BreakerBoard, ProbeContext
from probes.http_health import HttpHealthProbe, safe_url
from tests.loopback import LoopbackServer

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _target(*deps: DependencySpec, slow_ms: float = 2000) -> TargetSpec:
    return TargetSpec(name="checkout", dependencies=list(deps),
                      thresholds=Thresholds(dependency_slow_ms=slow_ms))


def _dep(name: str, url: str, timeout_s: float = 2.0, critical: bool = True) -> DependencySpec:
    return DependencySpec(name=name, url=url, timeout_s=timeout_s, critical=critical)  # type: ignore[arg-type]


def _diagnose(target: TargetSpec, ctx: ProbeContext | None = None) -> tuple[Observation, list]:  # type: ignore[type-arg]
    probe = HttpHealthProbe()
    ctx = ctx or ProbeContext(now=lambda: NOW)
    obs = Observation(probe.name, target.name, NOW, asyncio.run(probe.collect(target, ctx)))
    return obs, probe.analyze(obs, target, NOW)


def test_healthy_dependency_gives_no_finding(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", status=200)
    obs, findings = _diagnose(_target(_dep("stripe", url)))
    assert findings == []
    assert obs.data["checks"][0]["status"] == 200
    assert loopback.hits["/health"] == 1


def test_503_is_dependency_down_with_the_status(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", status=503)
    _, [finding] = _diagnose(_target(_dep("stripe", url)))
    assert finding.kind == "dependency_down" and finding.subject == "stripe"
    assert "HTTP 503" in finding.summary and finding.severity.label() == "SEV-2"


def test_non_critical_dependency_down_is_less_severe(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", status=500)
    _, [finding] = _diagnose(_target(_dep("avatars", url, critical=False)))
    assert finding.severity.label() == "SEV-3"


def test_connection_refused_is_dependency_down() -> None:
    _, [finding] = _diagnose(_target(_dep("stripe", "http://127.0.0.1:9/health")))
    assert finding.kind == "dependency_down"
    assert "connection refused" in finding.summary


def test_reset_connection_is_dependency_down(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", reset=True)
    _, [finding] = _diagnose(_target(_dep("stripe", url)))
    assert finding.kind == "dependency_down"


def test_hanging_dependency_times_out_and_is_down(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", delay_s=30)
    obs, [finding] = _diagnose(_target(_dep("stripe", url, timeout_s=0.3)))
    assert finding.kind == "dependency_down"
    assert "no answer within 0.3s" in finding.summary
    assert obs.data["checks"][0]["latency_ms"] < 3000


def test_slow_answer_is_dependency_slow(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", delay_s=0.3)
    _, [finding] = _diagnose(_target(_dep("stripe", url), slow_ms=100))
    assert finding.kind == "dependency_slow"
    assert finding.facts["latency_ms"] >= 300


def test_breaker_opens_after_repeated_timeouts_and_stops_calling(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", delay_s=30)
    target = _target(_dep("stripe", url, timeout_s=0.2))
    ctx = ProbeContext(now=lambda: NOW, breakers=BreakerBoard(fail_max=2, reset_timeout_s=600))
    for _ in range(2):
        _diagnose(target, ctx)
    hits_before = loopback.hits["/health"]
    obs, [finding] = _diagnose(target, ctx)
    assert loopback.hits["/health"] == hits_before  # the open breaker did not call it
    assert obs.data["checks"][0]["error_kind"] == "circuit_open"
    assert obs.data["breakers"] == {f"http:{safe_url(url)}": "open"}
    assert finding.kind == "dependency_down" and "circuit open" in finding.summary
    assert "not checked now: Hemostat's own breaker for it is open" in finding.summary  # stale, said so


def test_an_alert_diagnosis_looks_past_an_open_breaker_with_one_fresh_request(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", status=503)
    target = _target(_dep("payments", url, timeout_s=0.2))
    board = BreakerBoard(fail_max=2, reset_timeout_s=600)
    for _ in range(2):  # sweeps open Hemostat's breaker for it
        _diagnose(target, ProbeContext(now=lambda: NOW, breakers=board))
    _, [stale] = _diagnose(target, ProbeContext(now=lambda: NOW, breakers=board))
    assert "not checked now: Hemostat's own breaker for it is open" in stale.summary
    loopback.route("/health", status=200)  # payments recovered meanwhile
    hits = loopback.hits["/health"]
    alerted = ProbeContext(now=lambda: NOW, breakers=board, alerts=({"labels": {"alertname": "X"}},))
    obs, findings = _diagnose(target, alerted)
    assert loopback.hits["/health"] == hits + 1 and findings == []  # fresh evidence: it is up
    assert obs.data["checks"][0]["breaker"] == "open: this is a fresh request past it"
    loopback.route("/health", status=503)
    _, [down] = _diagnose(target, alerted)
    assert down.summary.startswith("payments is down: HTTP 503 (breaker open: this is a fresh request past it)")


def test_query_string_secrets_never_appear(loopback: LoopbackServer) -> None:
    url = loopback.route("/health", status=503) + "?api_key=sk_live_SECRET123"
    obs, [finding] = _diagnose(_target(_dep("stripe", url)))
    assert "SECRET123" not in repr(obs.data) and "SECRET123" not in repr(finding)


def test_probes_run_concurrently_so_a_pass_costs_the_slowest(loopback: LoopbackServer) -> None:
    """Three dependencies each taking 0.4 s: one pass must not cost 1.2 s. (Checks overlap,
    not speed: the bound is the sum minus one, far above the expected ~0.4 s.)"""
    deps = [_dep(f"dep{i}", loopback.route(f"/h{i}", delay_s=0.4)) for i in range(3)]
    registry = Registry()
    registry.add_probe(HttpHealthProbe())
    import time

    started = time.perf_counter()
    [obs] = asyncio.run(collect_all(_target(*deps), registry, ProbeContext(now=lambda: NOW)))
    elapsed = time.perf_counter() - started
    assert obs.ok and len(obs.data["checks"]) == 3
    assert elapsed < 0.8
