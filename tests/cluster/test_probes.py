"""k8s-workload and k8s-logs against the real control plane: what they read from objects the real
controllers, scheduler and kwok's kubelets wrote — a healthy rollout, a Deployment whose pods
the scheduler cannot place, a container a kubelet reports crash-looping, an HPA the real
controller holds at its maximum, and error lines served by kwok's kubelet log endpoint through
the apiserver (a `Logs` object names each pod's CRI-format log file)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes.client
import pytest

from agent.model import Observation, TargetSpec
from agent.model.context import ProbeContext
from probes.k8s_logs import K8sLogsProbe
from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S, RealCluster
from tests.cluster.kube import (
    WORKLOAD,
    create,
    cri_log,
    eventually,
    probe_now,
    run,
    serve_logs,
    target,
    wait_rolled_out,
    workload,
)
from tests.kubeapi.kubectl import kubectl_binary

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]
Client = kubernetes.client.ApiClient


def pod_names(client: Client, ns: str, app: str = "web") -> list[str]:
    pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod(ns, label_selector=f"app={app}").items
    return sorted(p.metadata.name for p in pods)


def test_a_healthy_rollout_reads_as_a_recent_deploy_and_nothing_bad(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=3))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    spec = target(ns, "web")
    data = run(WORKLOAD.collect(spec, ProbeContext(kube=lambda: admin_client)))
    assert (data["deployment"]["replicas"], data["deployment"]["available"]) == (3, 3)
    assert len(data["pods"]) == 3 and {p["phase"] for p in data["pods"]} == {"Running"}
    assert [rs["revision"] for rs in data["replicasets"]] in (["1"], [1])
    assert set(probe_now(spec, admin_client)) == {"recent_deploy"}


def test_unschedulable_pods_are_pending_with_the_schedulers_reason(admin_client: Client, ns: str) -> None:
    obj = workload("Deployment", "web", "shop/web:1.0", replicas=2)
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "64Gi"
    create(admin_client, ns, obj)
    spec = target(ns, "web")
    found = eventually(lambda: (f := probe_now(spec, admin_client)) and "pods_pending" in f and f,
                       60, "pods_pending")
    assert "0/3 nodes are available: 3 Insufficient memory" in json.dumps(found["pods_pending"].evidence)
    assert found["replicas_unavailable"].severity.name == "SEV1"  # none of 2 available
    assert found["replicas_unavailable"].facts["available"] == 0


def test_a_container_the_kubelet_reports_crash_looping(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=1))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    [pod] = pod_names(admin_client, ns)
    finished = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # what a kubelet writes for an OOM-killed, restarting container (kwok leaves a Running pod be)
    status = {"status": {"containerStatuses": [{
        "name": "app", "image": "shop/web:1.0", "imageID": "", "ready": False, "restartCount": 6,
        "started": False, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": finished,
                                     "startedAt": finished}}}]}}
    kubernetes.client.CoreV1Api(admin_client).patch_namespaced_pod_status(pod, ns, status)
    found = eventually(lambda: (f := probe_now(target(ns, "web"), admin_client)) and "crash_loop" in f and f,
                       30, "crash_loop")
    assert found["crash_loop"].facts["max_restarts"] == 6
    assert "oom_killed" in found


def test_an_hpa_held_at_its_maximum_by_the_real_controller(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=4))
    kubernetes.client.AutoscalingV2Api(admin_client).create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 2}})
    # the controller first records 4 current (above max), then scales the Deployment down to 2
    found = eventually(lambda: (f := probe_now(target(ns, "web"), admin_client)) and "hpa_at_max" in f
                       and f["hpa_at_max"].facts["current"] == 2 and f, 60, "hpa_at_max at 2/2")
    assert (found["hpa_at_max"].facts["max"], found["hpa_at_max"].facts["desired"]) == (2, 2)
    assert kubernetes.client.AppsV1Api(admin_client).read_namespaced_deployment("web", ns).spec.replicas == 2


def test_k8s_logs_groups_error_lines_the_kubelet_serves(admin_client: Client, ns: str, tmp_path: Path) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=2))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    first, second = pod_names(admin_client, ns)
    cri_log(tmp_path / "a.log", ["started"] + [f"ERROR payment {i} declined: upstream 502" for i in range(8)])
    cri_log(tmp_path / "b.log", ["ok", *(f"ERROR payment {i} declined: upstream 502" for i in range(5)),
                                 "FATAL db pool exhausted"])
    serve_logs(admin_client, ns, first, tmp_path / "a.log")
    serve_logs(admin_client, ns, second, tmp_path / "b.log")
    probe = K8sLogsProbe()
    spec: TargetSpec = target(ns, "web")

    def collect() -> dict[str, object] | None:
        data = run(probe.collect(spec, ProbeContext(kube=lambda: admin_client)))
        return data if data["logs_read"] == 2 else None  # the Logs objects reach kwok by a watch

    data = eventually(collect, 30, "both pods' logs served")
    assert (data["pods"], data["lines"], data["matched"]) == (2, 16, 14)
    now = datetime.now(UTC)
    [finding] = probe.analyze(Observation(probe.name, spec.name, now, data), spec, now)
    assert finding.kind == "error_spike" and finding.facts["matched"] == 14
    assert "payment" in finding.facts["top"][0]["signature"] and finding.facts["top"][0]["count"] == 13


def test_kubectl_logs_follow_stays_open_on_the_kwok_kubelet(
        admin_client: Client, ns: str, tmp_path: Path, real_cluster: RealCluster) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=1))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    [pod] = pod_names(admin_client, ns)
    log = tmp_path / "web.log"
    cri_log(log, ["started"])
    kubernetes.client.CustomObjectsApi(admin_client).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", ns, "logs", {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": pod},
            "spec": {"logs": [{"containers": ["app"], "logsFile": str(log), "follow": True}]}})
    base = [kubectl_binary(), "--kubeconfig", str(real_cluster.kubeconfig), "-n", ns, "logs", pod]
    eventually(lambda: subprocess.run(base, capture_output=True, text=True).stdout == "started\n", 30,
               "kwok serving the log")
    following = subprocess.Popen([*base, "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert following.stdout is not None
    assert following.stdout.readline() == "started\n"
    with log.open("a") as more:
        more.write(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + " stdout F ERROR boom\n")
    assert following.stdout.readline() == "ERROR boom\n"
    assert following.poll() is None
    following.terminate()
    following.communicate(timeout=30)
