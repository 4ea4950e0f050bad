"""Probe `k8s-workload`: the playbook's `kubectl get deploy,rs,pods,hpa` and `kubectl top pods`.

Collects the Deployment (desired vs available replicas, rollout conditions), its pods (phase,
scheduling, restarts, waiting and last-terminated reasons, resource limits), the ReplicaSets it
owns (revision, image, creation time: the rollout history), the HPA targeting it, and pod usage
from `metrics.k8s.io/v1beta1` when the cluster serves it (absent: a note, not an error).
`analyze` (the rules live in k8s_workload_rules.py) turns that into `replicas_unavailable`,
`rollout_stuck`, `crash_loop`, `oom_killed`, `pods_pending`, `recent_deploy` (a rollout is a
deploy), `cpu_saturated`, `memory_saturated` and `hpa_at_max`. Quantities ("250m", "612344Ki")
are parsed at collection by the client's own parser, so observations hold numbers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from agent.model import Finding, HemostatError, Observation, PermanentError, TargetSpec, truncate
from agent.model.context import ProbeContext
from agent.model.rbac import KubeRule, gitops_rules
from probes import _gitops
from probes._kube import (
    DEPLOYMENT_READS,
    api,
    label_selector,
    list_pods,
    parse_quantity,
    read_deployment,
    read_json,
    session,
)
from probes.k8s_workload_rules import findings

REVISION = "deployment.kubernetes.io/revision"
JSON = dict[str, Any]


def _container(spec: JSON, status: JSON) -> JSON:
    state, last = status.get("state") or {}, (status.get("lastState") or {}).get("terminated") or {}
    limits = (spec.get("resources") or {}).get("limits") or {}
    return {
        "name": spec["name"], "image": spec.get("image"), "restarts": int(status.get("restartCount", 0)),
        "waiting": (state.get("waiting") or {}).get("reason"),
        "waiting_message": truncate((state.get("waiting") or {}).get("message", ""), 200),
        "terminated": (state.get("terminated") or {}).get("reason"),
        "last_terminated": {"reason": last.get("reason"), "exit_code": last.get("exitCode"),
                            "finished_at": last.get("finishedAt")} if last else None,
        "limits": {k: parse_quantity(str(limits[k])) for k in ("cpu", "memory") if k in limits},
    }


def _pod(pod: JSON) -> JSON:
    status = pod.get("status") or {}
    statuses = {s["name"]: s for s in status.get("containerStatuses") or []}
    scheduled: JSON = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    return {
        "name": pod["metadata"]["name"], "phase": status.get("phase", "Unknown"),
        "created": pod["metadata"].get("creationTimestamp"),
        "template_hash": (pod["metadata"].get("labels") or {}).get("pod-template-hash"),
        "unschedulable": truncate(scheduled.get("message", "unschedulable"), 200)
        if scheduled.get("status") == "False" else None,
        "containers": [_container(c, statuses.get(c["name"], {}))
                       for c in pod["spec"].get("containers") or []],
    }


def _deployment(deploy: JSON) -> JSON:
    spec, status, meta = deploy["spec"], deploy.get("status") or {}, deploy["metadata"]
    return {
        "name": meta["name"], "namespace": meta["namespace"], "replicas": int(spec.get("replicas", 1)),
        "available": int(status.get("availableReplicas", 0)), "ready": int(status.get("readyReplicas", 0)),
        "updated": int(status.get("updatedReplicas", 0)), "current": int(status.get("replicas", 0)),
        "paused": bool(spec.get("paused")), "generation": int(meta.get("generation", 0)),
        "observed_generation": int(status.get("observedGeneration", 0)),
        "revision": (meta.get("annotations") or {}).get(REVISION),
        "conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message", "lastUpdateTime",
                                              "lastTransitionTime")}
                       for c in status.get("conditions") or []],
    }


def replica_set(rs: JSON) -> JSON:
    annotations = rs["metadata"].get("annotations") or {}
    containers = rs["spec"]["template"]["spec"].get("containers") or []
    return {"name": rs["metadata"]["name"], "revision": int(annotations.get(REVISION, "0") or 0),
            "created": rs["metadata"].get("creationTimestamp"),
            "history": annotations.get(f"{REVISION}-history"),
            "images": {c["name"]: c.get("image") for c in containers},
            "replicas": int(rs["spec"].get("replicas", 0))}


async def _replica_sets(ctx: ProbeContext, deploy: JSON) -> list[JSON]:
    """The rollout history, newest first: owned ReplicaSets, or for a StatefulSet or DaemonSet its
    ControllerRevisions (shaped alike)."""
    ns, uid = deploy["metadata"]["namespace"], deploy["metadata"]["uid"]
    apps = api(ctx, "AppsV1Api")
    selector = label_selector(deploy["spec"].get("selector") or {})
    if deploy.get("kind") in ("StatefulSet", "DaemonSet"):
        listing = await read_json(ctx, ("list", "controllerrevisions", ns, ""),
                                  apps.list_namespaced_controller_revision, ns, label_selector=selector)
        items = [_as_replica_set(r) for r in listing.get("items", [])]
    else:
        listing = await read_json(ctx, ("list", "replicasets", ns, ""), apps.list_namespaced_replica_set, ns,
                                  label_selector=selector)
        items = [_rollout_revision(rs) for rs in listing.get("items", [])] \
            if deploy.get("kind") == "Rollout" else listing.get("items", [])
    owned = [rs for rs in items
             if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]
    return sorted((replica_set(rs) for rs in owned), key=lambda rs: -rs["revision"])[:10]


def _rollout_revision(rs: JSON) -> JSON:
    """An Argo Rollouts ReplicaSet numbers its revision under its own annotation."""
    annotations = rs["metadata"].get("annotations") or {}
    revision = annotations.get("rollout.argoproj.io/revision", annotations.get(REVISION, "0"))
    return {**rs, "metadata": {**rs["metadata"], "annotations": {**annotations, REVISION: revision}}}


def _as_replica_set(revision: JSON) -> JSON:
    template = ((revision.get("data") or {}).get("spec") or {}).get("template") or {"spec": {}}
    meta = {**revision["metadata"], "annotations": {REVISION: str(revision.get("revision", 0))}}
    return {"metadata": meta, "spec": {"template": template, "replicas": 0}}


async def _hpa(ctx: ProbeContext, deploy: JSON) -> JSON | None:
    ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
    autoscaling = api(ctx, "AutoscalingV2Api")
    listing = await read_json(ctx, ("list", "horizontalpodautoscalers", ns, ""),
                              autoscaling.list_namespaced_horizontal_pod_autoscaler, ns)
    return hpa_for(listing.get("items", []), name, deploy.get("kind") or "Deployment")


def hpa_for(items: list[JSON], deployment: str, kind: str = "Deployment") -> JSON | None:
    """The HPA (of `kubectl get hpa -o json` items) that scales the workload, shaped; KEDA's
    name the ScaledObject that owns them."""
    for hpa in items:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        if ref.get("kind") == kind and ref.get("name") == deployment:
            status = hpa.get("status") or {}
            keda = (hpa["metadata"].get("labels") or {}).get("scaledobject.keda.sh/name")
            return {"name": hpa["metadata"]["name"], "min": int(hpa["spec"].get("minReplicas", 1)),
                    "max": int(hpa["spec"]["maxReplicas"]), "current": int(status.get("currentReplicas", 0)),
                    "desired": int(status.get("desiredReplicas", 0)),
                    **({"scaledobject": keda} if keda else {})}
    return None


async def _metrics(ctx: ProbeContext, deploy: JSON) -> dict[str, dict[str, JSON]]:
    """pod -> container -> {cpu (cores), memory (bytes)} from metrics.k8s.io."""
    ns = deploy["metadata"]["namespace"]
    custom = api(ctx, "CustomObjectsApi")
    listing = await read_json(ctx, ("list", "pods.metrics.k8s.io", ns, ""),
                              custom.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1", ns, "pods",
                              label_selector=label_selector(deploy["spec"].get("selector") or {}))
    try:
        return usage_by_pod(listing.get("items", []))
    except ValueError as e:  # usage the client's parser refuses: a gap in usage, not in the probe
        raise PermanentError(f"metrics.k8s.io answered an unreadable usage: {e}",
                             code="kube_bad_usage") from e


def usage_by_pod(items: list[JSON]) -> dict[str, dict[str, JSON]]:
    """PodMetrics items as pod -> container -> {cpu (cores), memory (bytes)}."""
    return {item["metadata"]["name"]: {c["name"]: _usage(c) for c in item.get("containers") or []}
            for item in items}


def _usage(container: JSON) -> dict[str, float]:
    return {k: parse_quantity(str(v)) for k, v in container["usage"].items()}


async def _optional(step: Any, what: str, notes: list[str]) -> Any:
    """An extra the diagnosis can do without: its failure becomes a note."""
    try:
        return await step
    except HemostatError as e:
        notes.append(f"{what}: metrics API (metrics.k8s.io) not available" if what == "metrics"
                     and e.code == "kube_not_found" else f"{what}: {e}")
        return None


def shape(deploy: JSON, pods: list[JSON], replica_sets: list[JSON], hpa: JSON | None,
          metrics: dict[str, dict[str, JSON]] | None, notes: list[str]) -> JSON:
    """The observation from the API's answers (replica sets already shaped, newest first)."""
    return {"deployment": _deployment(deploy), "pods": [_pod(p) for p in pods],
            "replicasets": replica_sets, "hpa": hpa, "metrics": metrics, "notes": notes}


class K8sWorkloadProbe:
    name = "k8s-workload"
    summary = "deployment, pods, rollout history, HPA and usage (kubectl get deploy,rs,pods,hpa; top)"
    kube_rules = (
        *DEPLOYMENT_READS,
        KubeRule("apps", "replicasets", ("list",), why="the rollout history"),
        KubeRule("apps", "controllerrevisions", ("list",), why="a StatefulSet's or DaemonSet's history"),
        KubeRule("autoscaling", "horizontalpodautoscalers", ("list",), why="the HPA targeting it"),
        KubeRule("metrics.k8s.io", "pods", ("list",), why="kubectl top pods"),
        *gitops_rules(("get",), "who owns the workload: Argo CD or Flux"),
    )

    def applies_to(self, target: TargetSpec) -> bool:
        return target.deployment is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        notes: list[str] = []
        async with session(ctx):
            deploy = await read_deployment(ctx, target)
            pods, replica_sets, hpa, metrics, gitops = await asyncio.gather(
                list_pods(ctx, deploy), _replica_sets(ctx, deploy),
                _optional(_hpa(ctx, deploy), "hpa", notes),
                _optional(_metrics(ctx, deploy), "metrics", notes),
                _optional(_gitops.owner(ctx, deploy), "gitops", notes))
        return {**shape(deploy, pods, replica_sets, hpa, metrics, notes), "gitops": gitops}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data = observation.data
        if "deployment" not in data:
            return []
        symptoms = findings(data, target, now)
        return _faults(data, now) + symptoms + _gitops.finding(data.get("gitops"), target, now, self.name)


def _faults(data: JSON, now: datetime) -> list[Finding]:
    """With the cluster around the workload recorded (a snapshot, `hemostat diagnose --snapshot`),
    the root causes of its trouble (probes/k8s_faults/), ahead of the symptoms."""
    if data.get("cluster") is None or data.get("workload") is None:
        return []
    from probes.k8s_faults import ClusterView, workload_of
    from probes.k8s_faults import findings as fault_findings

    view = ClusterView.of(data["cluster"], data.get("logs"))
    return fault_findings(workload_of(view, data["workload"]), view, now, "k8s-workload")
