"""`hemostat diagnose --snapshot DIR`: the 40 planted faults written as `kubectl get -o json`
lists (and one as a cluster-info dump), diagnosed offline through the CLI: the root cause and
the object at fault head each workload's diagnosis and the ranking, the tree proposes what to
change, and nothing touches a cluster or a ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli.main import cli
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, healthy


def write_lists(directory: Path, lists: dict[str, list[dict[str, Any]]]) -> Path:
    for key, items in lists.items():
        (directory / f"{key}.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return directory


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["--config", "/nonexistent/hemostat.yaml", "diagnose", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("cause", sorted(CASES))
def test_a_snapshot_names_the_root_cause_and_object_first(cause: str, tmp_path: Path) -> None:
    obj, plant = CASES[cause]
    lists = healthy()
    plant(lists)
    doc = json.loads(run("--snapshot", str(write_lists(tmp_path, lists)), "--json"))
    head = doc["ranked"][0]
    assert (head["root_cause"], head["object"]) == (cause, obj)
    assert head["class"] and head["evidence"]
    cart = doc["workloads"][0]
    assert cart["findings"][0]["root_cause"] == cause  # above replicas_unavailable and the like
    assert cart["proposals"] and cart["proposals"][0]["subject"] == obj


def test_a_cluster_info_dump_directory_with_logs(tmp_path: Path) -> None:
    """`kubectl cluster-info dump --output-directory`: nodes.json at the top, NAMESPACE/KIND.json
    lists (items without their kind), and NAMESPACE/POD/logs.txt."""
    lists = healthy()
    CASES["service_selector_mismatch"][1](lists)
    (tmp_path / "nodes.json").write_text(json.dumps({"kind": "NodeList", "items": lists["nodes"]}))
    shop = tmp_path / "shop"
    shop.mkdir()
    for key in ("deployments", "replicasets", "pods", "services", "events"):
        items = [{k: v for k, v in i.items() if k != "kind"} for i in lists[key]]
        kind = {"deployments": "Deployment", "replicasets": "ReplicaSet", "pods": "Pod", "services": "Service",
                "events": "Event"}[key]
        (shop / f"{key}.json").write_text(json.dumps({"kind": f"{kind}List", "items": items}))
    (shop / "cart-7d9f-abcde").mkdir()
    (shop / "cart-7d9f-abcde" / "logs.txt").write_text('{"level":"INFO","msg":"listening on :8080"}\n')
    out = run("--snapshot", str(tmp_path), "cart")
    assert "service_selector_mismatch (service_routing) at service/cart" in out
    assert "Service cart selects app=cart-svc; the pods of deployment/cart are labelled app=cart" in out


def test_a_healthy_snapshot_reports_no_trouble(tmp_path: Path) -> None:
    doc = json.loads(run("--snapshot", str(write_lists(tmp_path, healthy())), "--json"))
    assert doc["ranked"] == [] and doc["workloads"][0]["severity"] is None


def test_an_unknown_target_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", "/nonexistent/h.yaml", "diagnose", "--snapshot",
                                      str(write_lists(tmp_path, healthy())), "orders"])
    assert result.exit_code != 0 and "orders" in result.output


def test_a_node_fault_behind_several_workloads_heads_the_ranking(tmp_path: Path) -> None:
    """Two workloads on worker-2 whose kubelet stopped, a third with a readiness probe on the
    wrong port: all SEV-2, and the node, behind two workloads, comes first."""
    lists = healthy()
    CASES["kubelet_down"][1](lists)
    for name in ("orders", "ledger"):
        extra = healthy()
        (CASES["kubelet_down"] if name == "orders" else CASES["readiness_probe_wrong_port"])[1](extra)
        if name == "ledger":  # on worker-1 and worker-3, away from the node that is down
            extra["deployments"][0]["status"].update(availableReplicas=1, readyReplicas=1)
            extra["pods"][1]["spec"]["nodeName"] = "worker-3"
        renamed = json.loads(json.dumps(extra).replace("cart", name))
        for key in ("deployments", "replicasets", "pods", "events", "services", "endpointslices", "serviceaccounts"):
            lists[key] += renamed[key]
    doc = json.loads(run("--snapshot", str(write_lists(tmp_path, lists)), "--json"))
    first = doc["ranked"][0]
    assert (first["root_cause"], first["object"], first["workloads"]) == ("kubelet_down", "node/worker-2", 2)
    assert [(f["root_cause"], f["object"]) for f in doc["ranked"][1:]] == [
        ("readiness_probe_wrong_port", "deployment/ledger")]


def test_a_healthy_shop_of_several_services_shows_no_fault(tmp_path: Path) -> None:
    """Four workloads calling each other by Service name and FQDN, gRPC probes on undeclared
    ports, an external collector address, a LoadBalancer Service beside the ClusterIP one, a
    kube-proxy DaemonSet with its pods: nothing is a fault."""
    lists = healthy()
    for name in ("frontend", "catalog", "checkout"):
        extra = json.loads(json.dumps(healthy()).replace("cart", name))
        for key in ("deployments", "replicasets", "pods", "services", "endpointslices", "serviceaccounts"):
            lists[key] += extra[key]
    front = next(d for d in lists["deployments"] if d["metadata"]["name"] == "frontend")
    app = front["spec"]["template"]["spec"]["containers"][0]
    app["env"] = [{"name": "CART_SERVICE_ADDR", "value": "cart:80"},
                  {"name": "CATALOG_URL", "value": "http://catalog.shop.svc.cluster.local/api"},
                  {"name": "COLLECTOR_SERVICE_ADDR", "value": "otel.example.com:4317"},
                  {"name": "LOG_LEVEL", "value": "info"}]
    catalog = next(d for d in lists["deployments"] if d["metadata"]["name"] == "catalog")
    grpc = catalog["spec"]["template"]["spec"]["containers"][0]
    del grpc["ports"]
    grpc["livenessProbe"] = grpc["readinessProbe"] = {"grpc": {"port": 3550}}
    lists["services"].append({"kind": "Service", "metadata": {"name": "frontend-external", "namespace": "shop"},
                              "spec": {"type": "LoadBalancer", "selector": {"app": "frontend"},
                                       "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    lists["deployments"].append({"kind": "DaemonSet", "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                                                                    "uid": "uid-kp"},
                                 "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                                          "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                                                       "spec": {"hostNetwork": True, "containers": [
                                                           {"name": "kube-proxy", "image": "kube-proxy:v1.31"}]}}},
                                 "status": {"desiredNumberScheduled": 4, "numberAvailable": 4}})
    lists["pods"] += lists.pop("system_pods")
    doc = json.loads(run("--snapshot", str(write_lists(tmp_path, lists)), "--json"))
    assert doc["ranked"] == [], doc["ranked"]
    assert len(doc["workloads"]) == 5 and all(w["severity"] is None for w in doc["workloads"])


def test_a_bare_pod_is_a_workload_of_its_own(tmp_path: Path) -> None:
    """A pod no controller owns (kubectl run) is diagnosed too, the pod itself at fault."""
    lists = healthy()
    pod = json.loads(json.dumps(lists["pods"][0]))
    pod["metadata"] = {"name": "debug", "namespace": "shop", "uid": "uid-debug", "labels": {"run": "debug"},
                       "creationTimestamp": "2026-12-08T00:00:00Z"}
    pod["spec"]["containers"][0]["image"] = "busybox:does-not-exist"
    pod["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                     "containerStatuses": [{"name": "cart", "ready": False, "restartCount": 0, "state": {"waiting": {
                         "reason": "ErrImagePull", "message": 'failed to pull and unpack image "docker.io/library/'
                         'busybox:does-not-exist": failed to resolve reference "docker.io/library/busybox:'
                         'does-not-exist": docker.io/library/busybox:does-not-exist: not found'}}}]}
    lists["pods"].append(pod)
    doc = json.loads(run("--snapshot", str(write_lists(tmp_path, lists)), "--json"))
    assert (doc["ranked"][0]["root_cause"], doc["ranked"][0]["object"]) == ("image_not_found", "pod/debug")
    assert {w["workload"] for w in doc["workloads"]} == {"cart", "debug"}


def test_a_snapshot_is_never_sent_to_a_daemon(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", "/nonexistent/h.yaml", "diagnose", "--snapshot",
                                      str(write_lists(tmp_path, healthy())), "--server", "https://hemostat.example"])
    assert result.exit_code == 2 and "--snapshot diagnoses offline" in result.output
