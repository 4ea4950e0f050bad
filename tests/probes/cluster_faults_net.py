"""The planted faults, continued: service routing, performance, infrastructure."""

from __future__ import annotations

from typing import Any

from tests.probes.cluster_cases import NS, T0, case
from tests.probes.cluster_plant import container, pending, unavailable

JSON = dict[str, Any]
C = dict[str, list[JSON]]


def _service(c: C) -> JSON:
    return next(s for s in c["services"] if s["metadata"]["name"] == "cart")


@case("service_selector_mismatch", "service/cart")
def _(c: C) -> None:
    _service(c)["spec"]["selector"] = {"app": "cart-svc"}
    c["endpointslices"] = [{**c["endpointslices"][0], "endpoints": []}]


@case("service_port_mismatch", "service/cart")
def _(c: C) -> None:
    _service(c)["spec"]["ports"][0]["targetPort"] = 8000
    c["endpointslices"][0]["ports"] = [{"port": 8000, "protocol": "TCP"}]


@case("service_protocol_mismatch", "service/cart")
def _(c: C) -> None:
    _service(c)["spec"]["ports"][0]["protocol"] = "UDP"


@case("dependency_address_invalid", "deployment/cart")
def _(c: C) -> None:
    container(c)["env"][0]["value"] = "cart-database:5432"
    unavailable(c, 0)


@case("pod_cpu_overload", "deployment/cart")
def _(c: C) -> None:
    c["podmetrics"] = [
        {
            "kind": "PodMetrics",
            "metadata": {"name": p["metadata"]["name"], "namespace": NS},
            "containers": [{"name": "cart", "usage": {"cpu": "498m", "memory": "300Mi"}}],
        }
        for p in c["pods"]
    ]


@case("pod_network_delay", "deployment/cart")
def _(c: C) -> None:  # Chaos Mesh NetworkChaos, as `kubectl get networkchaos -o json` lists it
    c["chaos"] = [
        {
            "kind": "NetworkChaos",
            "metadata": {"name": "cart-delay", "namespace": NS},
            "spec": {
                "action": "delay",
                "mode": "all",
                "delay": {"latency": "800ms", "jitter": "100ms"},
                "selector": {"namespaces": [NS], "labelSelectors": {"app": "cart"}},
            },
        }
    ]


def _node_ready(c: C, node: str, status: str, reason: str, message: str) -> None:
    n = next(n for n in c["nodes"] if n["metadata"]["name"] == node)
    n["status"]["conditions"] = [
        {"type": "Ready", "status": status, "reason": reason, "message": message, "lastHeartbeatTime": T0}
    ]
    unavailable(c, 1)
    pod = next(p for p in c["pods"] if p["spec"]["nodeName"] == node)
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]


@case("kubelet_down", "node/worker-2")
def _(c: C) -> None:  # node_lifecycle_controller.go: NodeStatusUnknown "Kubelet stopped posting node status."
    _node_ready(c, "worker-2", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    c["leases"] = [
        {
            "kind": "Lease",
            "metadata": {"name": "worker-2", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "worker-2", "renewTime": T0},
        }
    ]


@case("containerd_down", "node/worker-1")
def _(c: C) -> None:  # kubelet: KubeletNotReady "container runtime is down, PLEG is not healthy: ..."
    _node_ready(
        c,
        "worker-1",
        "False",
        "KubeletNotReady",
        "[container runtime is down, PLEG is not healthy: pleg was last seen active 3m0s ago; threshold "
        "is 3m0s, container runtime not ready: RuntimeReady=false reason: message:]",
    )


@case("kube_proxy_down", "node/worker-1")
def _(c: C) -> None:
    proxy = next(p for p in c["system_pods"] if p["metadata"]["name"] == "kube-proxy-1")
    proxy["status"] = {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}]}


@case("kube_scheduler_down", "pod/kube-scheduler-control-plane")
def _(c: C) -> None:
    sched = next(p for p in c["system_pods"] if p["metadata"]["name"].startswith("kube-scheduler"))
    sched["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "kube-scheduler", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ],
    }
    pending(c, None)


@case("node_network_delay", "node/worker-1")
def _(c: C) -> None:
    c["chaos"] = [
        {
            "kind": "NetworkChaos",
            "metadata": {"name": "w1-delay", "namespace": "chaos-mesh"},
            "spec": {"action": "delay", "delay": {"latency": "2s"}, "selector": {"nodes": ["worker-1"]}},
        }
    ]


@case("node_packet_loss", "node/worker-2")
def _(c: C) -> None:
    c["chaos"] = [
        {
            "kind": "NetworkChaos",
            "metadata": {"name": "w2-loss", "namespace": "chaos-mesh"},
            "spec": {"action": "loss", "loss": {"loss": "60"}, "selector": {"nodes": ["worker-2"]}},
        }
    ]
