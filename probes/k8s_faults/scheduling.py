"""Scheduling faults (pure): why a pod stays Pending, from the scheduler's own words
(PodScheduled=False and FailedScheduling events: "0/3 nodes are available: 3 Insufficient cpu.")
confirmed against the specs — requests vs node allocatable, nodeSelector and node affinity vs
node labels, taints vs tolerations, cordoned nodes, anti-affinity. The reason most nodes give
(the control plane's standing taint aside) is the root cause. PVC binding is in volumes.py.

Scheduler reasons (kubernetes/kubernetes, pkg/scheduler/framework/plugins/):
noderesources/fit.go "Insufficient %v"; nodeaffinity/node_affinity.go ErrReasonPod
"node(s) didn't match Pod's node affinity/selector"; tainttoleration/taint_toleration.go
"node(s) had untolerated taint {%s: %s}" (older: "node(s) had taint {%s: %s}, that the pod didn't
tolerate"); nodeunschedulable/node_unschedulable.go ErrReasonUnschedulable "node(s) were
unschedulable"; interpodaffinity/filtering.go ErrReasonAntiAffinityRulesNotMatch "node(s) didn't
match pod anti-affinity rules", ErrReasonExistingAntiAffinityRulesNotMatch "node(s) didn't satisfy
existing pods anti-affinity rules".
"""

from __future__ import annotations

import re

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import (
    CONTROL_PLANE_TAINTS,
    ClusterView,
    Workload,
    condition,
    labels,
    matches,
    name,
    quantity,
)

ITEM = re.compile(r"(\d+) (.+)")
TAINT = re.compile(r"taints? \{([^:}]+)")


def scheduler_messages(w: Workload, view: ClusterView) -> list[str]:
    """The scheduler's messages about the workload's pending pods, newest first."""
    out = [
        str(c.get("message") or "")
        for p in w.pods
        if (p.get("status") or {}).get("phase") == "Pending"
        and (c := condition(p, "PodScheduled"))
        and c.get("status") == "False"
    ]
    out += [
        e["message"] for e in view.events_for({name(p) for p in w.pods}, w.namespace, ("FailedScheduling",))
    ]
    return [m for m in out if m]


def reasons(message: str) -> dict[str, int]:
    """ "0/3 nodes are available: 1 node(s) had untolerated taint {a: }, 2 Insufficient cpu." ->
    {reason: nodes}; preemption's own verdict and the control plane's standing taint left out."""
    head = message.split(". preemption:", 1)[0].split(": ", 1)[-1].rstrip(".")
    out: dict[str, int] = {}
    for part in re.split(r", (?=\d+ )", head):
        m = ITEM.match(part.strip())
        if m and not any(t in m[2] for t in CONTROL_PLANE_TAINTS):
            out[m[2]] = out.get(m[2], 0) + int(m[1])
    return out


def _requests(w: Workload, resource: str) -> float:
    return sum(
        quantity(((c.get("resources") or {}).get("requests") or {}).get(resource)) for c in w.containers()
    )


def _node_selector_fails(w: Workload, view: ClusterView) -> bool:
    sel = w.template.get("nodeSelector") or {}
    return (
        bool(sel)
        and view.has("nodes")
        and not any(all(labels(n).get(k) == v for k, v in sel.items()) for n in view.items("nodes"))
    )


def _affinity_fails(w: Workload, view: ClusterView) -> bool:
    affinity = (w.template.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    ) or []
    return (
        bool(terms)
        and view.has("nodes")
        and not any(
            matches({"matchExpressions": t.get("matchExpressions") or []}, labels(n))
            for n in view.items("nodes")
            for t in terms
        )
    )


def _tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    for t in tolerations:
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if (
            t.get("key") == taint.get("key")
            and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
            and t.get("effect") in (None, "", taint.get("effect"))
        ):
            return True
    return False


def _fit_fault(w: Workload, view: ClusterView, resource: str, message: str) -> Fault:
    want = _requests(w, resource)
    nodes = [
        (quantity(((n.get("status") or {}).get("allocatable") or {}).get(resource)), name(n))
        for n in view.workers()
    ]
    most = max(nodes, default=(0.0, "?"))

    def unit(v: float) -> str:
        return f"{v:g}" if resource == "cpu" else f"{v / 2**20:.0f}Mi"

    return Fault(
        f"insufficient_node_{resource}",
        w.ref,
        f"{w.ref} requests {unit(want)} {resource} per pod; the largest node ({most[1]}) has "
        f"{unit(most[0])} allocatable: lower the requests or add capacity",
        (
            message,
            f"requests {resource} {unit(want)} vs allocatable "
            + ", ".join(f"{n} {unit(v)}" for v, n in nodes),
        ),
        template_path="containers.resources",
        rank=3,
    )


def _taint_fault(w: Workload, view: ClusterView, message: str) -> Fault:
    keys = TAINT.findall(message)
    tolerations = w.template.get("tolerations") or []
    tainted = [
        (n, t)
        for n in view.items("nodes")
        for t in (n.get("spec") or {}).get("taints") or []
        if t.get("key") not in CONTROL_PLANE_TAINTS
        and t.get("effect") in ("NoSchedule", "NoExecute")
        and (not keys or t.get("key") in keys)
        and not _tolerates(tolerations, t)
    ]
    node, taint = tainted[0] if tainted else ({}, {"key": keys[0] if keys else "?"})
    obj = f"node/{name(node)}" if node else w.ref
    what = f"{taint.get('key')}={taint.get('value', '')}:{taint.get('effect', '')}"
    return Fault(
        "taint_not_tolerated",
        obj,
        f"node {name(node) or '?'} is tainted {what} and {w.ref} does not tolerate it: remove the "
        "taint or add a toleration",
        (
            message,
            *(
                f"node/{name(n)} taint {t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                for n, t in tainted[:3]
            ),
        ),
        template_path="tolerations",
        rank=3,
    )


def _cordon_fault(w: Workload, view: ClusterView, message: str) -> Fault:
    cordoned = [name(n) for n in view.items("nodes") if (n.get("spec") or {}).get("unschedulable")]
    obj = f"node/{cordoned[0]}" if cordoned else w.ref
    return Fault(
        "node_cordoned",
        obj,
        f"node(s) {', '.join(cordoned) or '?'} cordoned (spec.unschedulable): "
        f"uncordon to let {w.ref}'s pods schedule",
        (message, *(f"node/{n} spec.unschedulable=true" for n in cordoned)),
        rank=3,
    )


def _affinity_fault(w: Workload, view: ClusterView, message: str) -> Fault:
    sel = w.template.get("nodeSelector") or {}
    affinity = (w.template.get("affinity") or {}).get("nodeAffinity") or {}
    if sel and (_node_selector_fails(w, view) or not _affinity_fails(w, view)):
        return Fault(
            "node_selector_mismatch",
            w.ref,
            f"{w.ref} selects nodes {','.join(f'{k}={v}' for k, v in sel.items())}; no node carries "
            "those labels: fix spec.template.spec.nodeSelector or label a node",
            (
                message,
                *(
                    f"node/{name(n)} labels: "
                    + ",".join(
                        f"{k}={v}"
                        for k, v in sorted(labels(n).items())
                        if not k.startswith("kubernetes.io/") or k == "kubernetes.io/hostname"
                    )
                    for n in view.workers()[:3]
                ),
            ),
            template_path="nodeSelector",
            rank=3,
        )
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    ) or []
    exprs = [
        f"{e.get('key')} {e.get('operator')} {e.get('values') or ''}"
        for t in terms
        for e in t.get("matchExpressions") or []
    ]
    return Fault(
        "node_affinity_mismatch",
        w.ref,
        f"{w.ref}'s required node affinity ({'; '.join(exprs) or '?'}) matches no node: fix "
        "spec.template.spec.affinity.nodeAffinity or label a node",
        (message,),
        template_path="affinity",
        rank=3,
    )


def _anti_affinity_fault(w: Workload, view: ClusterView, message: str) -> Fault:
    return Fault(
        "pod_anti_affinity_conflict",
        w.ref,
        f"{w.ref}'s pod anti-affinity leaves no node for its pending pods "
        f"({w.desired()} replicas, {len(view.workers())} nodes): relax it to preferred or lower replicas",
        (message,),
        template_path="affinity",
        rank=3,
    )


def scheduling(w: Workload, view: ClusterView) -> list[Fault]:
    for message in scheduler_messages(w, view):
        counts = reasons(message)
        if not _node_selector_fails(w, view) and not _affinity_fails(w, view) and len(counts) > 1:
            # the selector picks some node: its "didn't match" is the selector at work, not the fault
            counts = {r: n for r, n in counts.items() if "node affinity/selector" not in r}
        if not counts:
            continue
        top = max(counts, key=lambda r: counts[r])
        if top.startswith("Insufficient cpu"):
            return [_fit_fault(w, view, "cpu", message)]
        if top.startswith("Insufficient memory"):
            return [_fit_fault(w, view, "memory", message)]
        if "taint" in top:
            return [_taint_fault(w, view, message)]
        if "were unschedulable" in top:
            return [_cordon_fault(w, view, message)]
        if "node affinity/selector" in top:
            return [_affinity_fault(w, view, message)]
        if "anti-affinity" in top or "pod affinity" in top:
            return [_anti_affinity_fault(w, view, message)]
    return []


RULES = (scheduling,)
