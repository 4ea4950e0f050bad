"""The `prometheus` probe against the real Prometheus 2.42, scraping a loopback app every second
whose counters and histograms follow a known script: 6 healthy scrapes (1% errors, fast), then a
bad phase (20% errors, p99 0.95 s, CPU and memory at 95% of their limits). History a day and a
week back is backfilled with promtool: /pay failed 1% then, /cart 20% (its usual).

Ratios and quantiles are asserted as the script makes them; onsets within one scrape interval
of the first bad scrape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from agent.diagnosis.registry import Registry
from agent.diagnosis.runner import analyze_all, collect_all
from agent.model import Finding, Observation, TargetSpec
from agent.model.context import ProbeContext
from tests.agent.daemon_harness import TOKEN, alert_payload, start_daemon, wait_until
from tests.probes.scripted_app import Phase, ScriptedApp, history, scripted
from tests.services import free_port
from tests.services.prometheus import PrometheusServer, launch

HEALTHY, BAD = 6, 14  # scrapes in each phase before the tests look
SCRAPE_S = 1.0
BAD_PHASE = Phase(requests=100, errors=20, buckets=(50, 70, 90, 100), cpu_s=0.95,
                  memory_bytes=int(0.95 * 2**30))
HEALTHY_PHASE = Phase(requests=100, errors=1, buckets=(90, 98, 100, 100))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScriptedApp, PrometheusServer]]:
    """One Prometheus scraping one scripted app, shared by this module's tests (it takes
    real seconds to build up the history they read)."""
    now = time.time()
    past = history(now - 86_400, {"/pay": 0.01, "/cart": 0.20}) + "\n" + \
        history(now - 7 * 86_400, {"/pay": 0.01, "/cart": 0.01})
    for app, server in scripted([(HEALTHY, HEALTHY_PHASE), (10**6, BAD_PHASE)]):
        prom = launch(tmp_path_factory.mktemp("prometheus"), targets=[server.url.removeprefix("http://")],
                      backfill=past + "\n# EOF\n")
        try:
            prom.wait_for(f'count_over_time(http_requests_total{{job="app",handler="/pay",code="500"}}[1h]) '
                          f">= {HEALTHY + BAD}", timeout_s=90)
            yield app, prom
        finally:
            prom.stop()


def _target(prom: PrometheusServer, handler: str = "/pay", **overrides: Any) -> TargetSpec:
    spec = {"url": prom.url, "selector": f'job="app",handler="{handler}"', "window": "3s",
            "lookback": "1m", "step_s": SCRAPE_S, "latency_slow_ms": 500,
            "slo": {"objective": 0.99, "windows": [{"long": "10s", "short": "3s", "factor": 10,
                                                    "severity": 1}]}, **overrides}
    return TargetSpec.model_validate({"name": "checkout", "deployment": "checkout",
                                      "probes": ["prometheus"], "prometheus": spec})


def _diagnose(target: TargetSpec, at: float | None = None,
              alerts: tuple[dict[str, Any], ...] = ()) -> tuple[list[Observation], dict[str, Finding]]:
    registry = Registry.discover()
    when = datetime.fromtimestamp(at, UTC) if at else datetime.now(UTC)
    ctx = ProbeContext(now=lambda: when, alerts=alerts)
    observations = asyncio.run(collect_all(target, registry, ctx))
    findings = analyze_all(observations, target, registry, when)
    return observations, {f.kind if f.kind != "probe_failed" else f.subject: f for f in findings}


def _onset(finding: Finding) -> float:
    return datetime.fromisoformat(finding.facts["onset"]).timestamp()


def test_error_ratio_quantiles_and_saturation_are_the_scripts(scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    _, prom = scene
    _, found = _diagnose(_target(prom))
    spike = found["error_spike"]
    assert spike.facts["ratio"] == pytest.approx(0.20, abs=0.001)
    assert spike.facts["samples"] == pytest.approx(300, rel=0.05)  # 100 requests/s over 3s
    assert spike.severity.label() == "SEV-2" and spike.facts["at_baseline"] is False
    assert spike.facts["baseline_1d"] == pytest.approx(0.01, abs=0.001)
    latency = found["latency_high"].facts["quantiles_s"]
    assert latency == pytest.approx({"p50": 0.1, "p95": 0.75, "p99": 0.95}, abs=0.001)
    assert found["cpu_saturated"].facts["max_ratio"] == pytest.approx(0.95, abs=0.05)
    assert found["memory_saturated"].facts["max_ratio"] == pytest.approx(0.95, abs=0.001)


def test_onset_is_the_first_bad_scrape_within_one_interval(scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    app, prom = scene
    _, found = _diagnose(_target(prom))
    first_bad = app.began[1]
    for kind in ("error_spike", "latency_high", "memory_saturated"):
        assert abs(_onset(found[kind]) - first_bad) <= SCRAPE_S, kind


def test_a_ratio_at_its_usual_level_for_the_hour_is_not_a_spike(scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    _, prom = scene
    _, found = _diagnose(_target(prom, handler="/cart"))
    spike = found["error_spike"]
    assert spike.facts["baseline_1d"] == pytest.approx(0.20, abs=0.001)
    assert spike.facts["baseline_1w"] == pytest.approx(0.01, abs=0.001)
    assert spike.facts["at_baseline"] is True and spike.severity.label() == "SEV-4"


def test_slo_burning_on_both_windows_pages(scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    _, prom = scene
    _, found = _diagnose(_target(prom))
    burn = found["slo_burn"]
    assert burn.severity.label() == "SEV-1"
    assert burn.facts["burn_long"] == pytest.approx(20, abs=3)  # 20% errors on a 1% budget
    assert burn.facts["burn_short"] == pytest.approx(20, abs=0.2)


def test_before_the_bad_phase_nothing_is_wrong(scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    app, prom = scene
    _, found = _diagnose(_target(prom), at=app.began[1] - 1.5 * SCRAPE_S)
    assert not {"error_spike", "latency_high", "cpu_saturated", "memory_saturated", "slo_burn"} & set(found)


def test_an_alerts_own_expression_is_re_evaluated_over_the_last_hour(
        scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    app, prom = scene
    expr = ('sum(rate(http_requests_total{job="app",code="500"}[3s])) / '
            'sum(rate(http_requests_total{job="app"}[3s])) > 0.1')
    alert = {"labels": {"alertname": "CheckoutErrors"},
             "generatorURL": f"{prom.url}/graph?g0.expr={quote(expr)}&g0.tab=1"}
    _, found = _diagnose(_target(prom), alerts=(alert,))
    condition = found["alert_condition"]
    assert condition.facts["holds"] is True and condition.facts["alertname"] == "CheckoutErrors"
    assert abs(_onset(condition) - app.began[1]) <= SCRAPE_S


def test_a_failing_query_is_a_named_gap_and_the_rest_still_count(
        scene: tuple[ScriptedApp, PrometheusServer]) -> None:
    _, prom = scene
    many_to_one = 'http_requests_total{job="app"} / on() vector(1)'  # parses; fails when run
    _, found = _diagnose(_target(prom, queries={"cpu": many_to_one}))
    gap = found["prometheus:cpu"]
    assert gap.kind == "probe_failed" and "many-to-one matching must be explicit" in gap.summary
    assert "error_spike" in found and "cpu_saturated" not in found


def _write_config(path: Path, target: TargetSpec) -> Path:
    path.write_text(yaml.safe_dump({"targets": [target.model_dump(mode="json")]}))
    return path


def test_prometheus_unreachable_is_a_gap_never_silence(tmp_path: Path) -> None:
    target = _target(PrometheusServer("prometheus", Path("/nonexistent"), port=free_port()))
    observations, found = _diagnose(target)
    assert observations[0].error_code == "prometheus_unreachable"
    assert "unreachable" in found["prometheus"].summary
    # Start-up validation cannot check the queries then, and does not stop the diagnosis.
    config = _write_config(tmp_path / "hemostat.yaml", target)
    result = CliRunner().invoke(cli, ["--config", str(config), "diagnose", "checkout", "--json", "--no-ledger"])
    assert result.exit_code == 4, result.output  # incomplete: a probe could not look
    [probe] = json.loads(result.output)["probes"]
    assert probe["ok"] is False and "unreachable" in probe["error"]


def test_a_promql_syntax_error_stops_start_up_naming_file_and_field(
        scene: tuple[ScriptedApp, PrometheusServer], tmp_path: Path) -> None:
    _, prom = scene
    path = _write_config(tmp_path / "hemostat.yaml",
                         _target(prom, queries={"errors": "sum(rate(http_requests_total[5m]"}))
    result = CliRunner().invoke(cli, ["--config", str(path), "diagnose", "checkout", "--no-ledger"])
    assert result.exit_code == 2
    assert f"{path}: targets.0.prometheus.queries.errors: bad_data: 1:33: parse error: " \
           "unclosed left parenthesis" in result.output


def test_a_deployment_name_with_a_hyphen_makes_valid_saturation_queries(
        scene: tuple[ScriptedApp, PrometheusServer], tmp_path: Path) -> None:
    _, prom = scene  # most Deployments are called web-api, not webapi: `\-` broke PromQL's strings
    target = _target(prom).model_dump(mode="json")
    target.update(name="web-api", deployment="web-api")
    path = _write_config(tmp_path / "hemostat.yaml", TargetSpec.model_validate(target))
    result = CliRunner().invoke(cli, ["--config", str(path), "diagnose", "web-api", "--no-ledger", "--json"])
    # 4: incomplete (the selector matches no series: a gap), with an incident; was exit 2:
    # "queries.cpu: bad_data: ... unknown escape"
    assert result.exit_code == 4, result.output
    doc = json.loads(result.output)
    assert doc["probes"][0]["ok"] is True  # every query parsed and ran
    # No app called web-api is scraped here: its queries match no series, and that is a named gap,
    # not health (this assertion was `complete is True`, which read missing data as healthy).
    assert {m["code"] for m in doc["missing"]} == {"prometheus_no_series"}, doc["missing"]


def test_the_daemon_re_checks_a_firing_alerts_own_expression(
        scene: tuple[ScriptedApp, PrometheusServer], tmp_path: Path) -> None:
    _, prom = scene
    (tmp_path / "token").write_text(TOKEN)
    config = {"store": {"path": "ledger.db"}, "sweeps": False, "notifiers": [],
              "intake": {"token": {"file": str(tmp_path / "token")}},
              "targets": [_target(prom).model_dump(mode="json")]}
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    payload = alert_payload("checkout")
    expr = 'sum(rate(http_requests_total{job="app",code="500"}[3s])) > 1'
    payload["alerts"][0]["generatorURL"] = f"{prom.url}/graph?g0.expr={quote(expr)}&g0.tab=1"
    daemon = start_daemon(path)
    try:
        assert daemon.post(payload, token=TOKEN)[0] == 202

        def condition() -> Any:
            events = daemon.ledger().events()
            return next((e.data for e in events if e.type == "finding" and e.data["kind"] == "alert_condition"),
                        None)
        found = wait_until(condition, timeout_s=30)
    finally:
        daemon.stop()
    assert found["facts"]["holds"] is True and found["facts"]["alertname"] == "HighErrorRate"
