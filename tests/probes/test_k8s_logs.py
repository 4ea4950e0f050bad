"""k8s-logs: real multi-container pods with previous logs on the fake apiserver; `signature` pure."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.model import Observation, PermanentError, Severity, TargetSpec
from agent.model.context import ProbeContext
from probes.k8s_logs import K8sLogsProbe, group_errors, signature
from tests.kubeapi.server import FakeApiServer

NS = "shop"
PROBE = K8sLogsProbe()


def pod(name: str, containers: list[str], labels: dict[str, str] | None = None,
        statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": c, "image": f"shop/{c}:1"} for c in containers]},
            "status": {"phase": "Running", "containerStatuses": statuses or []}}


def running(name: str, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "restartCount": restarts, "ready": True, "state": {"running": {}}}


def setup_cluster(api: FakeApiServer) -> None:
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": NS},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]}}}})


def target(**logs: Any) -> TargetSpec:
    return TargetSpec(name="shop-app", namespace=NS, deployment="app", logs=logs,
                      thresholds={"log_errors": 5})


def collect(client: kubernetes.client.ApiClient, spec: TargetSpec, timeout_s: float = 5.0) -> dict[str, Any]:
    ctx = ProbeContext(kube=lambda: client, timeout_s=timeout_s)
    return asyncio.run(PROBE.collect(spec, ctx))  # type: ignore[no-any-return]


def observe(data: dict[str, Any]) -> Observation:
    return Observation("k8s-logs", "shop-app", datetime.now(UTC), data)


def test_error_lines_grouped_across_containers_and_previous_logs(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app", "proxy"], statuses=[running("app", restarts=2), running("proxy")]))
    kube_api.seed(pod("web-2", ["app"], statuses=[{"name": "app", "restartCount": 0,
                                                   "state": {"waiting": {"reason": "ContainerCreating"}}}]))
    kube_api.seed(pod("other-1", ["app"], labels={"app": "other"}, statuses=[running("app")]))
    kube_api.set_pod_log(NS, "web-1", "app", "\n".join(
        [f"ERROR timeout after {300 + i} ms for order {8000 + i}" for i in range(6)] + ["INFO ok"] * 3))
    kube_api.set_pod_log(NS, "web-1", "app", "FATAL out of memory at 0x7fff0012\nFATAL out of memory at 0x7fff0099",
                         previous=True)
    kube_api.set_pod_log(NS, "web-1", "proxy", "ERROR timeout after 12 ms for order 1\nupstream 10.0.0.7 ok")
    kube_api.set_pod_log(NS, "other-1", "app", "ERROR not ours\n" * 50)

    data = collect(kube_client, target())
    assert (data["pods"], data["logs_read"], data["matched"]) == (2, 3, 9)
    top, fatal = data["groups"]
    assert (top["signature"], top["count"], top["source_count"]) == (
        "ERROR timeout after <num> ms for order <num>", 7, 2)
    assert set(top["sources"]) == {"web-1/app", "web-1/proxy"}
    assert (fatal["signature"], fatal["count"], fatal["sources"]) == (
        "FATAL out of memory at <hex>", 2, ["web-1/app#previous"])
    assert top["first_seen"] <= top["last_seen"] and top["first_seen"].startswith(str(datetime.now(UTC).year))
    assert data["notes"] == ['web-2/app: get pods/log in shop: HTTP 400: container "app" in pod "web-2" '
                             'is waiting to start: ContainerCreating']

    [finding] = PROBE.analyze(observe(data), target(), datetime.now(UTC))
    assert (finding.kind, finding.subject, finding.severity) == ("error_spike", "app", Severity.SEV3)
    assert finding.evidence[0].startswith("7x in 2 containers")
    assert finding.facts["matched"] == 9


def test_tail_lines_and_since_seconds_bound_each_log(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app"], statuses=[running("app")]))
    now = datetime.now(UTC)
    stamps = [now - timedelta(hours=2)] * 300 + [now] * 200
    kube_api.set_pod_log(NS, "web-1", "app", "\n".join(f"ERROR line {i}" for i in range(500)), timestamps=stamps)
    assert collect(kube_client, target(tail_lines=100))["lines"] == 100
    data = collect(kube_client, target(tail_lines=10000, since_seconds=600))
    assert data["lines"] == data["matched"] == 200
    assert any("tailLines=10000" in p and "sinceSeconds=600" in p for _, p in kube_api.requests)


def test_a_target_container_limits_the_reads(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app", "proxy"], statuses=[running("app"), running("proxy")]))
    kube_api.set_pod_log(NS, "web-1", "app", "ERROR a")
    kube_api.set_pod_log(NS, "web-1", "proxy", "ERROR b")
    spec = TargetSpec(name="shop-app", namespace=NS, deployment="app", container="proxy")
    data = collect(kube_client, spec)
    assert [g["sources"] for g in data["groups"]] == [["web-1/proxy"]]


def test_missing_deployment_is_a_clear_gap(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    with pytest.raises(PermanentError) as err:
        collect(kube_client, target())
    assert str(err.value) == "not found: deployments shop/app"


def test_no_pods_is_a_note_not_an_error(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    data = collect(kube_client, target())
    assert data["notes"] == ["no pods match the deployment's selector"] and data["matched"] == 0
    assert PROBE.analyze(observe(data), target(), datetime.now(UTC)) == []


def test_forbidden_logs_name_the_grant(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app"], statuses=[running("app")]))
    kube_api.fail_next("GET", f"/api/v1/namespaces/{NS}/pods/web-1/log", 403)
    with pytest.raises(PermanentError) as err:
        collect(kube_client, target())
    assert str(err.value) == "forbidden: cannot get pods/log in namespace shop — grant it in the Role"


def test_a_hanging_pod_log_is_a_note_and_the_others_are_read(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app"], statuses=[running("app")]))
    kube_api.seed(pod("web-2", ["app"], statuses=[running("app")]))
    kube_api.set_pod_log(NS, "web-2", "app", "ERROR boom")
    kube_api.set_hang(f"/api/v1/namespaces/{NS}/pods/web-1/log", 3)
    data = collect(kube_client, target(), timeout_s=0.2)
    assert data["logs_read"] == 1 and data["matched"] == 1
    assert data["notes"] == ["web-1/app: apiserver 127.0.0.1:" + kube_api.url.rsplit(":", 1)[1]
                             + ": get pods/log timed out after 0.2s"]


def test_signature_replaces_variable_parts() -> None:
    assert signature("2024-05-01T02:55:01.123Z ERROR timeout after 3012 ms from 10.0.0.7:5432") == (
        "<ts> ERROR timeout after <num> ms from <ip>:<num>")
    assert signature("user 550e8400-e29b-41d4-a716-446655440000 req=7f3a9c2b1d at 0xDEADbeef") == (
        "user <uuid> req=<hex> at <hex>")
    assert signature("reset by fe80::1ff:fe23:4567:890a trace abcd1234efgh at 12:30:45,123") == (
        "reset by <ip> trace <id> at <ts>")
    assert signature("  Traceback (most recent call last):  ") == "Traceback (most recent call last):"


@given(st.text(max_size=200))
def test_signature_has_no_digits_and_is_idempotent(line: str) -> None:
    once = signature(line)
    assert not re.search(r"\d", once)
    assert signature(once) == once


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=3, max_size=3))
def test_lines_differing_only_in_numbers_share_a_signature(numbers: list[int]) -> None:
    a, b, c = numbers
    assert signature(f"order {a} failed after {b} ms (attempt {c})") == signature(
        "order 1 failed after 2 ms (attempt 3)")


def test_group_errors_counts_orders_and_keeps_first_and_last_seen() -> None:
    lines = ["2024-05-01T02:55:00.000000000Z ERROR db timeout 1",
             "2024-05-01T02:55:01.000000000Z INFO fine",
             "2024-05-01T02:55:02.000000000Z ERROR db timeout 2",
             "2024-05-01T02:55:03.000000000Z FATAL disk full",
             "2024-05-01T02:55:04.000000000Z ERROR db timeout 3"]
    db, disk = group_errors(lines, [r"^ERROR", r"\bFATAL\b"], timestamped=True)
    assert db == {"signature": "ERROR db timeout <num>", "count": 3, "example": "ERROR db timeout 1",
                  "first_seen": "2024-05-01T02:55:00.000000000Z", "last_seen": "2024-05-01T02:55:04.000000000Z",
                  "per_minute": {"2024-05-01T02:55": 3}}  # the timeline its onset is read from
    assert (disk["signature"], disk["count"]) == ("FATAL disk full", 1)
    assert group_errors(["ERROR x 1", "warn"], [r"ERROR"]) == [
        {"signature": "ERROR x <num>", "count": 1, "first_seen": None, "last_seen": None, "example": "ERROR x 1"}]


def test_secrets_in_error_lines_are_redacted_in_the_observation(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api)
    kube_api.seed(pod("web-1", ["app"], statuses=[running("app")]))
    kube_api.set_pod_log(NS, "web-1", "app", "ERROR connect postgresql://app:hunter2@db/shop failed")
    [group] = collect(kube_client, target())["groups"]
    assert "hunter2" not in group["example"] and "hunter2" not in group["signature"]


PATTERN_SETS = [[r"\bERROR\b", r"\bFATAL\b", "Traceback"], [r"^ERROR", r"timeout$"], [r"(?i)error", r"\d{3} ms"]]


@given(st.lists(st.text(alphabet="ERORFATLerotime 0123456789ms:", max_size=30), max_size=40),
       st.sampled_from(PATTERN_SETS))
def test_grouping_counts_exactly_the_lines_a_naive_search_matches(lines: list[str], patterns: list[str]) -> None:
    """The prefilter and the joined alternation change speed, never the answer."""
    naive = [line for line in lines if any(re.search(p, line) for p in patterns)]
    groups = group_errors(lines, patterns)
    assert sum(g["count"] for g in groups) == len(naive)
    assert {g["signature"] for g in groups} == {signature(line) for line in naive}


def test_patterns_with_global_flags_still_combine() -> None:
    assert [g["count"] for g in group_errors(["an Error", "FATAL x", "ok"], [r"(?i)error", "FATAL"])] == [1, 1]


def test_long_signatures_are_cut_between_words_never_inside_a_class_name() -> None:
    from agent.model import shorten

    line = "ERROR " + "payment failed " * 8 + "com.stripe.net.APIConnectionException: timeout"
    cut = shorten(line, 140)
    assert cut.endswith(" …") and "com.stripe.net.APIConnectio" not in cut.removesuffix(" …")[-30:]
    assert all(word in line.split() for word in cut.removesuffix(" …").split())


def test_an_error_spike_begins_at_its_first_line_and_a_thin_trickle_is_noise() -> None:
    spec = target()
    burst = [f"2026-11-27T02:5{m}:00.000000001Z ERROR upstream timeout for order {m}" for m in range(10)]
    spike = observe({"matched": 40, "since_seconds": 900, "groups": [{
        "signature": "ERROR upstream timeout for order <num>", "count": 40, "first_seen": burst[0].split()[0],
        "last_seen": burst[-1].split()[0], "example": "x", "sources": ["a"], "source_count": 1}]})
    [finding] = PROBE.analyze(spike, spec, spike.collected_at)
    assert finding.onset == datetime(2026, 11, 27, 2, 50, tzinfo=UTC)
    assert "first 02:50:00, last 02:59:00" in finding.evidence[0]
    trickle = observe({"matched": 12, "since_seconds": 900, "groups": [{
        "signature": "ERROR cache miss", "count": 12, "first_seen": None, "last_seen": None, "example": "x",
        "sources": ["a"], "source_count": 1}]})
    [noise] = PROBE.analyze(trickle, spec, trickle.collected_at)
    assert noise.noise and noise.severity == Severity.SEV4 and "n=12" in noise.summary
