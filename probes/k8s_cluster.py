"""Probe `k8s-cluster`: the cluster around the target, read once per pass, so the fault rules
(probes/k8s_faults/) can name the object at fault and the root cause — not "2/3 replicas".

Reads the workload, then at once: the namespace's pods, ReplicaSets, events, Services,
EndpointSlices, ServiceAccounts, ResourceQuotas, PVCs and pod usage (metrics.k8s.io); the
cluster's nodes, PersistentVolumes and StorageClasses; kube-system's pods (kube-proxy, the
scheduler). Each is a plain GET of a list (read rights in helm/hemostat/templates/_rbac.tpl,
`kube_rules` below); a list the probe may not read is a note and the rules treat its kind as
unread, never as empty.
Objects are stripped of managedFields and last-applied annotations before they are recorded.

A sweep's targets share the reads: a list asked for again within `SHARE_S` seconds, for the same
client (the same identity: a caller's own credentials never share another's), on the same event
loop, is the first answer (or the read still in flight), so a pass over twelve targets lists the
nodes once, not twelve times. A failed read is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from agent.model import Finding, HemostatError, Observation, TargetSpec
from agent.model.context import ProbeContext
from agent.model.kube import RawRead
from agent.model.rbac import KubeRule
from probes._kube import DEPLOYMENT_READS, read_deployment, read_json, session
from probes.k8s_faults import ClusterView, findings, workload_of

JSON = dict[str, Any]
# kind -> (path, namespaced): the lists a pass reads
LISTS = {
    "pods": ("/api/v1/namespaces/{ns}/pods", True),
    "replicasets": ("/apis/apps/v1/namespaces/{ns}/replicasets", True),
    "events": ("/api/v1/namespaces/{ns}/events", True),
    "services": ("/api/v1/namespaces/{ns}/services", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", True),
    "serviceaccounts": ("/api/v1/namespaces/{ns}/serviceaccounts", True),
    "resourcequotas": ("/api/v1/namespaces/{ns}/resourcequotas", True),
    "persistentvolumeclaims": ("/api/v1/namespaces/{ns}/persistentvolumeclaims", True),
    "podmetrics": ("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", True),
    "nodes": ("/api/v1/nodes", False),
    "persistentvolumes": ("/api/v1/persistentvolumes", False),
    "storageclasses": ("/apis/storage.k8s.io/v1/storageclasses", False),
    "system_pods": ("/api/v1/namespaces/kube-system/pods", False),
}
MAX_ITEMS = 500  # per kind: evidence, not an inventory
SHARE_S = 5.0
_SHARED: dict[tuple[Any, str], tuple[float, asyncio.Future[JSON]]] = {}


async def shared(ctx: ProbeContext, path: str, read: Callable[[], Awaitable[JSON]]) -> JSON:
    """`read()`, or the answer (or the read in flight) for the same client and path of the last
    `SHARE_S` seconds on this event loop."""
    now, loop = time.monotonic(), asyncio.get_running_loop()
    for key in [k for k, (until, _) in _SHARED.items() if until <= now]:
        del _SHARED[key]
    key = (ctx.kube, path)
    hit = _SHARED.get(key)
    if hit is not None and hit[1].get_loop() is loop:
        return await asyncio.shield(hit[1])
    task = asyncio.ensure_future(read())
    _SHARED[key] = (now + SHARE_S, task)
    try:
        return await asyncio.shield(task)
    except BaseException:
        if _SHARED.get(key, (0, None))[1] is task:
            del _SHARED[key]
        raise


def slim(obj: JSON) -> JSON:
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations or "annotations" in meta:
        meta["annotations"] = annotations
    return {**obj, "metadata": meta}


async def _list(ctx: ProbeContext, kind: str, ns: str, notes: list[str]) -> tuple[str, list[JSON] | None]:
    path, namespaced = LISTS[kind]
    where = ns if namespaced else ("kube-system" if kind == "system_pods" else "(cluster)")
    url = path.format(ns=ns)
    try:
        data = await shared(
            ctx,
            url,
            lambda: read_json(ctx, ("list", kind, where, ""), RawRead(ctx.kube, url, ()), limit=MAX_ITEMS),
        )
    except HemostatError as e:
        notes.append(f"{kind}: {e}")
        return kind, None
    return kind, [slim(i) for i in data.get("items") or []]


class K8sClusterProbe:
    name = "k8s-cluster"
    summary = "the cluster around the workload: nodes, events, quotas, services, volumes, kube-system"
    kube_rules = (
        *DEPLOYMENT_READS,
        KubeRule("apps", "replicasets", ("list",), why="which pods the rollout made"),
        KubeRule("", "events", ("list",), why="scheduler, kubelet and controller verdicts"),
        KubeRule("", "services", ("list",), why="Service selector and ports vs the pods"),
        KubeRule("discovery.k8s.io", "endpointslices", ("list",), why="where a Service routes"),
        KubeRule("", "serviceaccounts", ("list",), why="the ServiceAccount the pods run as exists"),
        KubeRule("", "resourcequotas", ("list",), why="quota hard vs used"),
        KubeRule("", "persistentvolumeclaims", ("list",), why="claims the pods mount"),
        KubeRule("metrics.k8s.io", "pods", ("list",), why="usage vs the CPU limit (kubectl top pods)"),
        KubeRule("", "nodes", ("list",), "cluster", "allocatable, taints, cordons, heartbeats"),
        KubeRule("", "persistentvolumes", ("list",), "cluster", "what a claim could bind"),
        KubeRule("storage.k8s.io", "storageclasses", ("list",), "cluster", "a claim's class exists"),
        KubeRule("", "pods", ("list",), "system", "kube-system: is kube-proxy, is the scheduler up"),
    )

    def applies_to(self, target: TargetSpec) -> bool:
        return target.deployment is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        notes: list[str] = []
        async with session(ctx):
            workload = await read_deployment(ctx, target)
            ns = target.namespace
            lists = dict(await asyncio.gather(*(_list(ctx, kind, ns, notes) for kind in LISTS)))
        return {
            "workload": slim(workload),
            "cluster": {k: v for k, v in lists.items() if v is not None},
            "notes": notes,
        }

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data = observation.data
        if "workload" not in data:
            return []
        view = ClusterView.of(data.get("cluster") or {}, data.get("logs"))
        return findings(workload_of(view, data["workload"]), view, now, self.name)
