"""k8s-workload: deployment, pods, rollout history, HPA and metrics from the fake apiserver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import pytest

from agent.model import Finding, Observation, PermanentError, Severity, TargetSpec
from agent.model.context import ProbeContext
from probes._kube import parse_quantity
from probes.k8s_workload import K8sWorkloadProbe
from tests.kubeapi.server import FakeApiServer

NS, APP = "shop", "app"
PROBE = K8sWorkloadProbe()
TARGET = TargetSpec(name="shop-app", namespace=NS, deployment=APP)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def setup_cluster(api: FakeApiServer, client: kubernetes.client.ApiClient) -> None:
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "app", "image": "shop/app:1.0"}]}}}})
    kubernetes.client.AppsV1Api(client).patch_namespaced_deployment(APP, NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "shop/app:2.0"}]}}}})


def seed_pod(api: FakeApiServer, name: str, status: dict[str, Any], limits: dict[str, str] | None = None) -> None:
    container = {"name": "app", "image": "shop/app:2.0",
                 **({"resources": {"limits": limits}} if limits else {})}
    api.seed({"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
              "spec": {"containers": [container]}, "status": status})


def crashing(now: datetime) -> dict[str, Any]:
    return {"phase": "Running", "containerStatuses": [{
        "name": "app", "restartCount": 5, "ready": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                     "finishedAt": stamp(now - timedelta(minutes=1))}}}]}


def unschedulable() -> dict[str, Any]:
    return {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory."}]}


def running() -> dict[str, Any]:
    return {"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 0, "ready": True,
                                                        "state": {"running": {}}}]}


def collect(client: kubernetes.client.ApiClient) -> dict[str, Any]:
    return asyncio.run(PROBE.collect(TARGET, ProbeContext(kube=lambda: client)))  # type: ignore[no-any-return]


def analyze(data: dict[str, Any], now: datetime) -> dict[str, Finding]:
    findings = PROBE.analyze(Observation("k8s-workload", "shop-app", now, data), TARGET, now)
    return {f.kind: f for f in findings}


def test_a_broken_rollout_shows_every_symptom(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    now = datetime.now(UTC)
    setup_cluster(kube_api, kube_client)
    kube_api.set_deployment_unavailable(NS, APP, 0)
    seed_pod(kube_api, "web-a", crashing(now), limits={"memory": "256Mi"})
    seed_pod(kube_api, "web-b", unschedulable())
    seed_pod(kube_api, "web-c", running(), limits={"cpu": "500m", "memory": "512Mi"})
    kube_api.seed({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                   "metadata": {"name": "web-c", "namespace": NS, "labels": {"app": "web"}},
                   "timestamp": stamp(now), "window": "30s",
                   "containers": [{"name": "app", "usage": {"cpu": "480m", "memory": "100Mi"}}]})
    kube_api.seed({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "app", "namespace": NS},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                            "minReplicas": 2, "maxReplicas": 3},
                   "status": {"currentReplicas": 3, "desiredReplicas": 3}})

    data = collect(kube_client)
    assert data["notes"] == []
    found = analyze(data, now + timedelta(minutes=4))
    assert sorted(found) == ["cpu_saturated", "crash_loop", "hpa_at_max", "oom_killed", "pods_pending",
                             "recent_deploy", "replicas_unavailable"]
    assert found["replicas_unavailable"].severity == Severity.SEV1
    assert found["replicas_unavailable"].summary == "0/3 replicas of app available"
    assert found["crash_loop"].severity == Severity.SEV2 and found["crash_loop"].facts["max_restarts"] == 5
    assert "last exit 137 (OOMKilled)" in found["crash_loop"].evidence[0]
    assert found["oom_killed"].evidence == ("web-a/app OOMKilled, memory limit 256Mi",)
    assert "Insufficient memory" in found["pods_pending"].summary
    assert found["cpu_saturated"].facts["max_ratio"] == 0.96
    assert found["hpa_at_max"].facts == {"hpa": "app", "current": 3, "max": 3, "desired": 3}
    deploy = found["recent_deploy"].facts
    assert (deploy["revision"], deploy["image"], deploy["previous_revision"], deploy["previous_image"]) == (
        2, "shop/app:2.0", 1, "shop/app:1.0")
    assert 3.5 <= deploy["minutes_before"] <= 4.5 and deploy["at"].startswith(str(now.year))


def test_a_healthy_deployment_has_no_findings_once_the_deploy_is_old(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api, kube_client)
    seed_pod(kube_api, "web-c", running(), limits={"cpu": "1", "memory": "1Gi"})
    data = collect(kube_client)
    assert data["deployment"]["available"] == 3 and data["hpa"] is None
    assert analyze(data, datetime.now(UTC) + timedelta(hours=2)) == {}
    assert sorted(analyze(data, datetime.now(UTC))) == ["recent_deploy"]


def test_partial_availability_is_sev2(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api, kube_client)
    kube_api.set_deployment_unavailable(NS, APP, 2)
    found = analyze(collect(kube_client), datetime.now(UTC))
    assert found["replicas_unavailable"].severity == Severity.SEV2


def test_absent_metrics_api_is_noted_not_an_error(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api, kube_client)
    kube_api.fail_next("GET", "/apis/metrics.k8s.io/", 404)
    data = collect(kube_client)
    assert data["metrics"] is None
    assert data["notes"] == ["metrics: metrics API (metrics.k8s.io) not available"]


def test_missing_deployment_is_a_clear_gap(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    with pytest.raises(PermanentError, match="not found: deployments shop/app"):
        collect(kube_client)


def test_forbidden_pod_list_names_the_grant(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    setup_cluster(kube_api, kube_client)
    kube_api.fail_next("GET", f"/api/v1/namespaces/{NS}/pods", 403)
    with pytest.raises(PermanentError) as err:
        collect(kube_client)
    assert str(err.value) == "forbidden: cannot list pods in namespace shop — grant it in the Role"


def test_progress_deadline_exceeded_is_a_stuck_rollout() -> None:
    data = {"deployment": {"name": APP, "replicas": 3, "available": 3, "ready": 3, "updated": 1, "current": 4,
                           "revision": "7", "conditions": [
                               {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                               {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                "message": 'ReplicaSet "app-7c9" has timed out progressing.'}]},
            "pods": [], "replicasets": [], "hpa": None, "metrics": None, "notes": []}
    [stuck] = analyze(data, datetime.now(UTC)).values()
    assert (stuck.kind, stuck.severity, stuck.facts["revision"]) == ("rollout_stuck", Severity.SEV2, "7")


def test_restarts_over_threshold_without_backoff_are_sev3() -> None:
    pod = {"name": "web-a", "phase": "Running", "unschedulable": None, "containers": [
        {"name": "app", "restarts": 3, "waiting": None, "last_terminated": None, "terminated": None, "limits": {}}]}
    data = {"deployment": {"name": APP, "replicas": 1, "available": 1, "conditions": []}, "pods": [pod]}
    assert analyze(data, datetime.now(UTC))["crash_loop"].severity == Severity.SEV3


def test_quantities_parse_to_cores_and_bytes() -> None:
    assert parse_quantity("250m") == 0.25
    assert parse_quantity("2") == 2.0
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("1G") == 1e9
    assert parse_quantity("1500000n") == pytest.approx(0.0015)
    with pytest.raises(ValueError):
        parse_quantity("12 bananas")


@pytest.mark.parametrize(("text", "value"), [
    ("612344Ki", 612344 * 2**10), ("1843209023n", 1.843209023), ("350000u", 0.35), ("0.25Gi", 2**28),
    ("300M", 3e8), ("100k", 1e5), ("1e3", 1000), ("2e8", 2e8), ("1.5Ti", 1.5 * 2**40), ("3Pi", 3 * 2**50),
    ("1Ei", 2**60), ("2E", 2e18), ("268435456", 268435456), ("0", 0),
])
def test_every_unit_metrics_server_and_the_apiserver_emit_parses(text: str, value: float) -> None:
    """metrics-server writes memory as Ki and CPU as n; the client's own parser reads them all."""
    assert parse_quantity(text) == pytest.approx(value)
