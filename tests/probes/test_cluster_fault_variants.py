"""The same root causes as clusters show them otherwise: injected by hand (tc netem, stress-ng)
or by Chaos Mesh's StressChaos, kube-proxy gone with its DaemonSet still wanting it, claims known
only from the PV controller's events (a cluster-info dump holds no PVCs), an older scheduler's
taint wording, HTTP sent to an HTTPS port; and what must stay silent (no kube-proxy by design)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from probes.k8s_faults import ClusterView, findings, workload_of
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, healthy
from tests.probes.cluster_plant import container, deployment, event, pending, unavailable

NOW = datetime(2026, 12, 8, 0, 30, tzinfo=UTC)


def head(lists: dict[str, list[dict[str, Any]]]) -> tuple[str, str] | None:
    view = ClusterView.of({k: v for k, v in lists.items() if k != "deployments"})
    found = findings(workload_of(view, lists["deployments"][0]), view, NOW)
    return (found[0].kind, found[0].subject) if found else None


def test_tc_netem_in_the_workloads_own_pods_is_pod_network_delay() -> None:
    lists = healthy()
    deployment(lists)["spec"]["template"]["spec"]["initContainers"] = [{
        "name": "slow", "image": "nicolaka/netshoot", "command": ["sh", "-c"],
        "args": ["tc qdisc add dev eth0 root netem delay 800ms 100ms"]}]
    assert head(lists) == ("pod_network_delay", "deployment/cart")


def test_tc_netem_loss_in_a_host_network_pod_on_its_node_is_node_packet_loss() -> None:
    lists = healthy()
    lists["pods"].append({"kind": "Pod", "metadata": {"name": "netem-w2", "namespace": "default"},
                          "spec": {"hostNetwork": True, "nodeName": "worker-2", "containers": [{
                              "name": "tc", "image": "alpine", "command": [
                                  "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "40%"]}]},
                          "status": {"phase": "Running"}})
    assert head(lists) == ("node_packet_loss", "node/worker-2")


def test_a_cpu_stressor_sidecar_and_stresschaos_are_pod_cpu_overload() -> None:
    lists = healthy()
    deployment(lists)["spec"]["template"]["spec"]["containers"].append(
        {"name": "burn", "image": "polinux/stress-ng", "args": ["--cpu", "4", "--timeout", "600s"]})
    assert head(lists) == ("pod_cpu_overload", "deployment/cart")
    lists = healthy()
    lists["chaos"] = [{"kind": "StressChaos", "metadata": {"name": "burn", "namespace": "shop"},
                       "spec": {"mode": "all", "selector": {"namespaces": ["shop"], "labelSelectors": {"app": "cart"}},
                                "stressors": {"cpu": {"workers": 2, "load": 100}}}}]
    assert head(lists) == ("pod_cpu_overload", "deployment/cart")


def test_kube_proxy_gone_while_its_daemonset_wants_it() -> None:
    lists = healthy()
    lists["system_pods"] = [p for p in lists["system_pods"] if not p["metadata"]["name"].startswith("kube-proxy")]
    assert head(lists) is None  # no kube-proxy and no DaemonSet: a CNI that replaces it
    lists["daemonsets"] = [{"kind": "DaemonSet", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                            "status": {"desiredNumberScheduled": 4, "numberAvailable": 0}}]
    assert head(lists) == ("kube_proxy_down", "daemonset/kube-proxy")


def test_claims_known_only_from_the_pv_controllers_events() -> None:
    for cause, message in (("pv_already_bound", 'volume "pv-data" already bound to a different claim.'),
                           ("pvc_storage_class_mismatch", 'storageclass.storage.k8s.io "fast-ssd" not found')):
        lists = healthy()
        CASES[cause][1](lists)
        for key in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
            del lists[key]
        lists["events"] = [e for e in lists["events"] if e["involvedObject"]["kind"] == "Pod"]
        event(lists, "PersistentVolumeClaim", "data", "FailedBinding", message)
        assert head(lists) == (cause, "persistentvolumeclaim/data")


def test_the_older_schedulers_taint_wording() -> None:
    lists = healthy()
    for n in lists["nodes"][1:]:
        n["spec"]["taints"] = [{"key": "maintenance", "value": "true", "effect": "NoSchedule"}]
    pending(lists, "0/4 nodes are available: 4 node(s) had taint {maintenance: true}, that the pod didn't "
                   "tolerate.")
    assert head(lists) == ("taint_not_tolerated", "node/worker-1")


def test_http_sent_to_an_https_port_is_the_wrong_protocol() -> None:
    lists = healthy()
    container(lists)["ports"][0].update(name="https", containerPort=8443)
    container(lists)["livenessProbe"]["httpGet"]["port"] = 8443
    container(lists)["readinessProbe"]["httpGet"]["port"] = 8443
    lists["services"][0]["spec"]["ports"][0]["targetPort"] = 8443
    unavailable(lists)
    for pod in lists["pods"]:
        event(lists, "Pod", pod["metadata"]["name"], "Unhealthy",
              "Liveness probe failed: HTTP probe failed with statuscode: 400")
    assert head(lists) == ("liveness_probe_wrong_protocol", "deployment/cart")


def _refused_without_declared_ports(probe_port: int) -> dict[str, list[dict[str, Any]]]:
    lists = healthy()
    del container(lists)["ports"]
    container(lists)["livenessProbe"]["httpGet"]["port"] = probe_port
    unavailable(lists)
    for pod in lists["pods"]:
        event(lists, "Pod", pod["metadata"]["name"], "Unhealthy", f'Liveness probe failed: Get "http://10.244.1.5:'
              f'{probe_port}/healthz": dial tcp 10.244.1.5:{probe_port}: connect: connection refused')
    return lists


def test_refused_with_no_declared_ports_the_services_target_port_tells_port_from_timing() -> None:
    """The container declares no ports; service/cart sends to 8080. A probe on 8080 that is
    refused was early (timing); one on 9000 knocks where nothing listens (wrong port)."""
    assert head(_refused_without_declared_ports(8080)) == ("liveness_probe_timing", "deployment/cart")
    assert head(_refused_without_declared_ports(9000)) == ("liveness_probe_wrong_port", "deployment/cart")


def test_a_service_with_a_mistyped_selector_under_another_name() -> None:
    lists = healthy()
    lists["services"][0]["metadata"]["name"] = "shopping-cart"
    lists["services"][0]["spec"]["selector"] = {"app": "cart-v2"}
    assert head(lists) == ("service_selector_mismatch", "service/shopping-cart")


def test_a_runtime_that_stopped_before_the_node_went_not_ready() -> None:
    """The node still reports Ready; the kubelet's sandbox creation on it fails on containerd's socket."""
    lists = healthy()
    unavailable(lists, 1)
    event(lists, "Pod", "cart-7d9f-fghij", "FailedCreatePodSandBox", 'Failed to create pod sandbox: rpc error: '
          'code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix '
          '/run/containerd/containerd.sock: connect: connection refused"')
    assert head(lists) == ("containerd_down", "node/worker-2")
