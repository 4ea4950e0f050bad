"""Infrastructure and network faults (pure): a node whose kubelet stopped posting status, whose
container runtime is down, whose kube-proxy is not running; a kube-scheduler that is down (pods
wait with no scheduling verdict at all); network delay or packet loss injected on a node or on
the workload's pods (Chaos Mesh NetworkChaos objects, or probe timeouts confined to one node).
A node fault is the workload's when its pods run (or ran) there.

Kubelet and controller words (kubernetes/kubernetes): pkg/controller/nodelifecycle/
node_lifecycle_controller.go sets Ready=Unknown, reason NodeStatusUnknown, "Kubelet stopped
posting node status."; pkg/kubelet/kubelet_node_status.go / runtime state: Ready=False reason
KubeletNotReady "container runtime is down" / "container runtime status check may not have
completed yet" / "PLEG is not healthy".
"""

from __future__ import annotations

import re
from typing import Any

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, condition, labels, matches, name

JSON = dict[str, Any]
RUNTIME = re.compile(
    r"container runtime is down|container runtime status check|container runtime not ready|"
    r"PLEG is not healthy|containerd\.sock|runtime network not ready",
    re.I,
)


def _nodes_of(w: Workload) -> set[str]:
    return {
        str((p.get("spec") or {}).get("nodeName")) for p in w.pods if (p.get("spec") or {}).get("nodeName")
    }


def _node(pod: JSON) -> str:
    return str((pod.get("spec") or {}).get("nodeName"))


def _ready(pod: JSON) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True") and (pod.get("status") or {}).get("phase") == "Running"


def runtime_events(w: Workload, view: ClusterView) -> list[Fault]:
    """The node still Ready, but the kubelet cannot reach its runtime for the workload's pods
    (FailedCreatePodSandBox / Failed: `…/run/containerd/containerd.sock: connect: connection refused`)."""
    by_pod = {name(p): _node(p) for p in w.pods if _node(p) != "None"}
    hits = [
        e
        for e in view.events_for(set(by_pod), w.namespace)
        if e["type"] != "Normal" and RUNTIME.search(e["message"]) and by_pod.get(e["name"])
    ]
    if not hits:
        return []
    node = by_pod[hits[0]["name"]]
    return [
        Fault(
            "containerd_down",
            f"node/{node}",
            f"node {node}'s container runtime does not answer the kubelet: restart containerd on the node",
            tuple(f"{e['reason']} on pod/{e['name']}: {e['message']}" for e in hits[:3]),
            rank=4,
        )
    ]


def nodes(w: Workload, view: ClusterView) -> list[Fault]:
    out = []
    mine = _nodes_of(w)
    for node in view.items("nodes"):
        ready = condition(node, "Ready") or {}
        if name(node) not in mine or ready.get("status") == "True":
            continue
        heartbeat = (
            f"node/{name(node)} Ready={ready.get('status')} {ready.get('reason', '')}: "
            f"{ready.get('message', '')} (last heartbeat {ready.get('lastHeartbeatTime', '?')})"
        )
        lease = view.get("leases", name(node), "kube-node-lease")
        renewed = (
            [f"lease kube-node-lease/{name(node)} last renewed {(lease.get('spec') or {}).get('renewTime')}"]
            if lease
            else []
        )
        if RUNTIME.search(str(ready.get("message") or "")):
            out.append(
                Fault(
                    "containerd_down",
                    f"node/{name(node)}",
                    f"node {name(node)}'s container runtime is down (the kubelet reports it): restart "
                    "containerd on the node",
                    (heartbeat, *renewed),
                    rank=4,
                )
            )
        else:
            out.append(
                Fault(
                    "kubelet_down",
                    f"node/{name(node)}",
                    f"node {name(node)}'s kubelet stopped posting status: restart the kubelet (or the "
                    "node); its pods cannot be managed",
                    (heartbeat, *renewed),
                    rank=4,
                )
            )
    return out


def kube_proxy(w: Workload, view: ClusterView) -> list[Fault]:
    if not view.has("system_pods"):
        return []
    proxies = [
        p
        for p in view.items("system_pods")
        if labels(p).get("k8s-app") == "kube-proxy" or name(p).startswith("kube-proxy-")
    ]
    if not proxies:  # none at all: deleted, or a CNI that replaces kube-proxy — only its DaemonSet can tell
        ds = view.get("daemonsets", "kube-proxy", "kube-system")
        if ds is None or int((ds.get("status") or {}).get("desiredNumberScheduled", 0)) == 0:
            return []
        status = ds.get("status") or {}
        return [
            Fault(
                "kube_proxy_down",
                "daemonset/kube-proxy",
                f"kube-proxy runs on no node ({status.get('numberAvailable', 0)} of "
                f"{status.get('desiredNumberScheduled')} available): Service traffic is not routed; "
                "restore the kube-proxy DaemonSet",
                (f"daemonset/kube-proxy status {status}",),
                rank=4,
            )
        ]
    by_node = {str((p.get("spec") or {}).get("nodeName")): p for p in proxies}
    for node in sorted(_nodes_of(w)) or [name(n) for n in view.workers()]:
        p = by_node.get(node)
        if p is None or not _ready(p):
            state = (
                "no kube-proxy pod"
                if p is None
                else f"{name(p)} is {(p.get('status') or {}).get('phase')}, not Ready"
            )
            return [
                Fault(
                    "kube_proxy_down",
                    f"node/{node}",
                    f"kube-proxy on node {node} is down ({state}): Service "
                    f"traffic to and from its pods is not routed; restore the kube-proxy DaemonSet pod",
                    (
                        f"kube-system: {state} on node/{node}",
                        "kube-proxy pods: " + (", ".join(f"{name(x)}@{_node(x)}" for x in proxies) or "none"),
                    ),
                    rank=4,
                )
            ]
    return []


def scheduler(w: Workload, view: ClusterView) -> list[Fault]:
    waiting = [
        p
        for p in w.pods
        if (p.get("status") or {}).get("phase") == "Pending"
        and not (p.get("spec") or {}).get("nodeName")
        and condition(p, "PodScheduled") is None
    ]
    if not waiting or not view.has("system_pods"):
        return []
    sched = [
        p
        for p in view.items("system_pods")
        if labels(p).get("component") == "kube-scheduler" or name(p).startswith("kube-scheduler")
    ]
    if any(_ready(p) for p in sched):
        return []
    obj = f"pod/{name(sched[0])}" if sched else "pod/kube-scheduler"
    state = (
        f"{name(sched[0])} is {(sched[0].get('status') or {}).get('phase')}, not Ready"
        if sched
        else "no kube-scheduler pod in kube-system"
    )
    return [
        Fault(
            "kube_scheduler_down",
            obj,
            f"kube-scheduler is down ({state}): {len(waiting)} pod(s) of {w.ref} "
            "wait with no scheduling decision; restore the scheduler's static pod",
            (state, *(f"pod/{name(p)} Pending, no PodScheduled condition, no node" for p in waiting[:3])),
            rank=4,
        )
    ]


def _chaos_targets(chaos: JSON, w: Workload) -> bool:
    sel = (chaos.get("spec") or {}).get("selector") or {}
    pods = sel.get("pods") or {}
    if any(name(p) in pods.get(w.namespace, []) for p in w.pods):
        return True
    label_sel = sel.get("labelSelectors")
    spaces = sel.get("namespaces") or [(chaos.get("metadata") or {}).get("namespace")]
    return (
        bool(label_sel) and w.namespace in spaces and any(matches(label_sel, lab) for lab in w.pod_labels())
    )


def network(w: Workload, view: ClusterView) -> list[Fault]:
    out = []
    for chaos in view.items("chaos"):
        spec = chaos.get("spec") or {}
        action = spec.get("action")
        if chaos.get("kind") not in ("NetworkChaos", "PodNetworkChaos") or action not in ("delay", "loss"):
            continue
        detail = f"{chaos.get('kind')} {name(chaos)}: {action} {spec.get(action) or ''}"
        node_names = (spec.get("selector") or {}).get("nodes") or []
        if node_names:
            cause = "node_network_delay" if action == "delay" else "node_packet_loss"
            if set(node_names) & _nodes_of(w):
                out.append(
                    Fault(
                        cause,
                        f"node/{sorted(set(node_names) & _nodes_of(w))[0]}",
                        f"network {action} injected on node(s) {', '.join(node_names)}: remove it",
                        (detail,),
                        rank=4,
                    )
                )
        elif _chaos_targets(chaos, w):
            out.append(
                Fault(
                    "pod_network_delay",
                    w.ref,
                    f"{w.ref}'s pods suffer injected network {action}: "
                    f"remove {chaos.get('kind')} {name(chaos)}",
                    (detail,),
                    rank=3,
                )
            )
    return out or _timeouts_on_one_node(w, view)


def _timeouts_on_one_node(w: Workload, view: ClusterView) -> list[Fault]:
    """Probe timeouts and not-ready pods on one node while the workload's pods elsewhere are fine."""
    timed = {name(p) for p in w.pods}
    slow = {
        e["name"]
        for e in view.events_for(timed, w.namespace, ("Unhealthy",))
        if re.search(r"context deadline exceeded|Client\.Timeout|i/o timeout", e["message"])
    }
    on = {str((p.get("spec") or {}).get("nodeName")) for p in w.pods if name(p) in slow}
    fine = {str((p.get("spec") or {}).get("nodeName")) for p in w.pods if name(p) not in slow and _ready(p)}
    if len(on) != 1 or not fine or on & fine:
        return []
    node = next(iter(on))
    losses = [e for e in view.events if e["name"] == node and e["reason"] in ("NodeNotReady", "NodeReady")]
    cause = "node_packet_loss" if losses else "node_network_delay"
    return [
        Fault(
            cause,
            f"node/{node}",
            f"pods of {w.ref} on node {node} time out while those on "
            f"{', '.join(sorted(fine))} answer: the node's network is "
            + ("dropping packets" if losses else "slow"),
            (
                f"probe timeouts on pods {', '.join(sorted(slow))} (all on node/{node})",
                *(f"{e['reason']} x{e['count']} on node/{node}" for e in losses[:2]),
            ),
            rank=2,
        )
    ]


RULES = (nodes, runtime_events, kube_proxy, scheduler, network)
