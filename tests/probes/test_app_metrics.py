"""app-metrics: a real Prometheus endpoint on loopback whose counters move between scrapes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import kubernetes.client
import pytest

from agent.model import MetricsSpec, Observation, PermanentError, TargetSpec
from agent.model.context import ProbeContext
from probes.app_metrics import AppMetricsProbe, sum_counters
from probes.app_metrics_pods import combined
from tests.kubeapi.server import FakeApiServer
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


# --- each pod behind a Service (EndpointSlices on the fake apiserver) ----------------------------

def endpoint_slice(service: str, pod: str, port: int, ready: bool = True, ns: str = "shop") -> dict[str, object]:
    """One pod's slice (real pods of a Service share a port; loopback pods each have their own)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-{pod}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}]}


def _pod(loopback_server: LoopbackServer, *pairs: tuple[int, int]) -> int:
    loopback_server.route("/metrics", body=_counters(*pairs))
    return int(loopback_server.url.rsplit(":", 1)[1])


@pytest.fixture
def pods() -> Iterator[tuple[LoopbackServer, LoopbackServer, LoopbackServer]]:
    servers = [LoopbackServer().start() for _ in range(3)]
    yield servers[0], servers[1], servers[2]
    for server in servers:
        server.stop()


def _service_target(**metrics: object) -> TargetSpec:
    return TargetSpec.model_validate({"name": "checkout", "namespace": "shop", "deployment": "checkout",
                                      "metrics": {"service": "checkout", "scrape_interval_s": 0.05, **metrics}})


def test_two_healthy_pods_behind_a_service_are_not_a_44_percent_spike(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient,
        pods: tuple[LoopbackServer, LoopbackServer, LoopbackServer]) -> None:
    pod_a, pod_b, not_ready = pods
    # pod A: 100 errors / 100k requests, then +10 / +1,000; pod B: 9,000 / 120k, then +10 / +1,000.
    kube_api.seed(endpoint_slice("checkout", "checkout-a", _pod(pod_a, (100_000, 100), (101_000, 110))))
    kube_api.seed(endpoint_slice("checkout", "checkout-b", _pod(pod_b, (120_000, 9_000), (121_000, 9_010))))
    kube_api.seed(endpoint_slice("checkout", "checkout-c", _pod(not_ready, (1, 1)), ready=False))
    probe, target = AppMetricsProbe(), _service_target()
    data = asyncio.run(probe.collect(target, ProbeContext(kube=lambda: kube_client)))
    assert [p["pod"] for p in data["pods"]] == ["checkout-a", "checkout-b"]  # not-ready c: no traffic
    rate, _ = combined(data["pods"])
    assert (rate["errors"], rate["requests"], rate["pods"]) == (20, 2000, 2)
    assert rate["ratio"] == pytest.approx(0.01)
    assert probe.analyze(Observation(probe.name, target.name, NOW, data), target, NOW) == []
    assert not_ready.hits.get("/metrics", 0) == 0


def test_the_same_pods_through_one_service_url_read_as_44_5_percent(loopback: LoopbackServer) -> None:
    """The bug the per-pod mode removes: the Service answered the first scrape from pod A and
    the second from pod B."""
    url = loopback.route("/metrics", body=_counters((100_000, 100), (120_000, 9_000)))
    _, [finding] = _run(url)
    assert finding.facts["ratio"] == 0.445 and finding.severity.label() == "SEV-2"


def test_per_pod_spike_reports_its_sample_size_and_a_dead_pod_is_not_silence(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient,
        pods: tuple[LoopbackServer, LoopbackServer, LoopbackServer]) -> None:
    pod_a, pod_b, dead = pods
    kube_api.seed(endpoint_slice("checkout", "checkout-a", _pod(pod_a, (1_000, 10), (1_400, 130))))
    kube_api.seed(endpoint_slice("checkout", "checkout-b", _pod(pod_b, (2_000, 20), (2_600, 20))))
    dead.route("/metrics", status=500)
    kube_api.seed(endpoint_slice("checkout", "checkout-dead", int(dead.url.rsplit(":", 1)[1])))
    probe, target = AppMetricsProbe(), _service_target()
    data = asyncio.run(probe.collect(target, ProbeContext(kube=lambda: kube_client)))
    [finding] = probe.analyze(Observation(probe.name, target.name, NOW, data), target, NOW)
    assert finding.facts["ratio"] == 0.12 and finding.facts["requests"] == 1000  # 120 / (400 + 600)
    assert (finding.facts["pods"], finding.facts["pods_failed"]) == (2, 1)
    assert finding.rate is not None and finding.rate.samples == 1000
    assert finding.evidence[0].startswith("2 pods behind Service shop/checkout")


def test_no_ready_pod_behind_the_service_is_a_named_gap(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    with pytest.raises(PermanentError, match="no ready pod behind Service shop/checkout"):
        asyncio.run(AppMetricsProbe().collect(_service_target(), ProbeContext(kube=lambda: kube_client)))


def test_metrics_needs_exactly_one_of_url_and_service() -> None:
    with pytest.raises(ValueError, match="exactly one of 'url'"):
        MetricsSpec.model_validate({"url": "http://a/metrics", "service": "checkout"})
