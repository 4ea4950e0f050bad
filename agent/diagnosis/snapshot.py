"""Diagnose a snapshot: a directory of Kubernetes API objects — `kubectl cluster-info dump
--output-directory DIR` (per-namespace `pods.json`, `events.json`, ... and `<ns>/<pod>/logs.txt`)
or files of `kubectl get ... -o json` lists — run through the same probe analysis, triage and
tree as a live diagnosis, offline: no cluster, no ledger.

Every Deployment, StatefulSet and DaemonSet found is a workload; its `k8s-workload` observation
is built as the live probe would have collected it, plus the cluster around it (the kinds the
fault rules read: nodes, events, quotas, Services, volumes, kube-system), so the root causes
(probes/k8s_faults/) head the findings. A kind no file holds is a kind not read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.diagnosis.service import Diagnosis, evaluate
from agent.diagnosis.wiring import App
from agent.model import ConfigError, Observation, TargetSpec
from agent.model.context import utcnow

JSON = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
KIND_KEYS = {
    "Node": "nodes",
    "Event": "events",
    "ResourceQuota": "resourcequotas",
    "Service": "services",
    "EndpointSlice": "endpointslices",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PersistentVolume": "persistentvolumes",
    "StorageClass": "storageclasses",
    "ServiceAccount": "serviceaccounts",
    "Pod": "pods",
    "ReplicaSet": "replicasets",
    "Lease": "leases",
    "PodMetrics": "podmetrics",
    "NetworkChaos": "chaos",
    "PodNetworkChaos": "chaos",
    "StressChaos": "chaos",
    "HorizontalPodAutoscaler": "hpas",
    "ControllerRevision": "controllerrevisions",
    **{k: "workloads" for k in WORKLOADS},
}
FILE_KINDS = {f"{v}.json": k for k, v in KIND_KEYS.items() if v not in ("workloads", "chaos")} | {
    "deployments.json": "Deployment",
    "statefulsets.json": "StatefulSet",
    "daemonsets.json": "DaemonSet",
}
MAX_FILE_BYTES = 256 << 20
MAX_LOG_BYTES = 64 << 10


def _items(doc: Any, fallback_kind: str | None) -> list[JSON]:
    if not isinstance(doc, dict):
        return []
    if "items" in doc:
        list_kind = str(doc.get("kind") or "")
        kind = (
            list_kind.removesuffix("List")
            if list_kind.endswith("List") and list_kind != "List"
            else fallback_kind
        )
        return [{**i, "kind": i.get("kind") or kind} for i in doc.get("items") or [] if isinstance(i, dict)]
    return [{**doc, "kind": doc.get("kind") or fallback_kind}] if doc.get("metadata") else []


def load(directory: Path) -> tuple[dict[str, list[JSON]], dict[str, str]]:
    """(kind key -> objects, "namespace/pod" -> log tail) from every JSON file under `directory`."""
    if not directory.is_dir():
        raise ConfigError(str(directory), "--snapshot", "not a directory")
    lists: dict[str, list[JSON]] = {}
    logs: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".txt" and path.name.startswith("logs"):
            rel = path.relative_to(directory).parts
            if len(rel) >= 3:
                with path.open("rb") as f:
                    f.seek(max(0, path.stat().st_size - MAX_LOG_BYTES))
                    logs[f"{rel[-3]}/{rel[-2]}"] = f.read().decode("utf-8", "replace")
            continue
        if path.suffix not in (".json",) or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(str(path), "--snapshot", f"not JSON: {e}") from e
        list_kind = str(doc.get("kind") or "").removesuffix("List") if isinstance(doc, dict) else ""
        read = KIND_KEYS.get(list_kind) or KIND_KEYS.get(FILE_KINDS.get(path.name, ""))
        if read:  # a list read, even an empty one: its kind was read
            lists.setdefault(read, [])
        for item in _items(doc, FILE_KINDS.get(path.name)):
            key = KIND_KEYS.get(str(item.get("kind")))
            if key:
                lists.setdefault(key, []).append(item)
    pods = _unique(lists.get("pods", []))
    lists["pods"] = pods
    if pods or "pods" in lists:
        lists["system_pods"] = [
            p for p in pods if (p.get("metadata") or {}).get("namespace") == "kube-system"
        ]
    return lists, logs


def _unique(items: list[JSON]) -> list[JSON]:
    seen: dict[tuple[str, str], JSON] = {}
    for i in items:
        meta = i.get("metadata") or {}
        seen.setdefault((str(meta.get("namespace")), str(meta.get("name"))), i)
    return list(seen.values())


def _bare(pod: JSON) -> bool:
    meta = pod.get("metadata") or {}
    return not meta.get("ownerReferences") and meta.get("namespace") != "kube-system"


def bare_pod(pod: JSON) -> JSON:
    """A pod no controller owns, as a workload of one replica (`pod/NAME` at fault)."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    lab = meta.get("labels") or {}
    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": lab},
            "template": {"metadata": {"labels": lab}, "spec": pod.get("spec") or {}},
        },
        "status": {
            "replicas": 1,
            "availableReplicas": int(ready),
            "readyReplicas": int(ready),
            "updatedReplicas": 1,
        },
    }


def _wanted(obj: JSON, targets: Sequence[str]) -> bool:
    meta = obj.get("metadata") or {}
    names = {
        meta.get("name"),
        f"{meta.get('namespace')}/{meta.get('name')}",
        f"{str(obj.get('kind')).lower()}/{meta.get('name')}",
    }
    return not targets or any(t in names for t in targets)


def observation(obj: JSON, lists: dict[str, list[JSON]], logs: dict[str, str], at: datetime) -> Observation:
    """The `k8s-workload` observation the live probe would have made, with the cluster around it."""
    from probes._kube import as_deployment
    from probes.k8s_faults import ClusterView, workload_of
    from probes.k8s_workload import hpa_for, replica_set, shape

    kind = str(obj.get("kind") or "Deployment")
    view = ClusterView.of(lists, logs)
    w = workload_of(view, obj)
    ns = w.namespace
    cluster = {k: v for k, v in lists.items() if k not in ("workloads", "hpas", "controllerrevisions")}
    if "workloads" in lists:  # kube-system's DaemonSets: is there a kube-proxy that should run
        cluster["daemonsets"] = [d for d in lists["workloads"] if d.get("kind") == "DaemonSet"]
    history = [
        replica_set(
            {**rs, "metadata": {**rs["metadata"], "annotations": rs["metadata"].get("annotations") or {}}}
        )
        for rs in w.replicasets
    ][:10]
    hpa = hpa_for(
        [h for h in lists.get("hpas", []) if (h.get("metadata") or {}).get("namespace") == ns], w.name, kind
    )
    pods = sorted(w.pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
    data = {
        **shape(as_deployment(obj, kind), pods, history, hpa, None, []),
        "gitops": None,
        "workload": obj,
        "cluster": cluster,
        "logs": {k: v for k, v in logs.items() if k.startswith(f"{ns}/")},
    }
    return Observation("k8s-workload", w.name, at, data)


def diagnose_snapshot(
    app: App, directory: Path, targets: Sequence[str] = (), now: datetime | None = None
) -> list[Diagnosis]:
    """One diagnosis per workload (the named ones, or all), worst first."""
    lists, logs = load(directory)
    every = [*lists.get("workloads", []), *(bare_pod(p) for p in lists.get("pods", []) if _bare(p))]
    workloads = [w for w in every if _wanted(w, targets)]
    if targets and not workloads:
        raise ConfigError(
            str(directory),
            "TARGET",
            "no Deployment, StatefulSet, DaemonSet or bare Pod named " + ", ".join(targets),
        )
    at = now or utcnow()
    out = []
    for obj in workloads:
        meta = obj["metadata"]
        spec = TargetSpec(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            deployment=meta["name"],
            kind=obj.get("kind") if obj.get("kind") in WORKLOADS else "Deployment",
            probes=["k8s-workload"],
        )
        out.append(evaluate(app, spec, [observation(obj, lists, logs, at)], at))
    return sorted(out, key=lambda d: (int(d.triage.severity or 5), d.target))


def _finding(d: Diagnosis, f: Any) -> JSON:
    return {
        "workload": f"{f.facts.get('namespace') or ''}/{d.target}".lstrip("/"),
        "object": f.facts.get("object", f.subject),
        "root_cause": f.facts.get("root_cause", f.kind),
        "class": f.facts.get("class", "symptom"),
        "severity": f.severity.label(),
        "summary": f.summary,
        "evidence": list(f.evidence),
        "from_change": bool(f.facts.get("from_change")),
        "rank": int(f.facts.get("rank", 0)),
    }


def report(diagnoses: Sequence[Diagnosis]) -> JSON:
    """Per workload its headline, findings (root causes first) and proposals; and every root
    cause across the snapshot ranked, each (root cause, object) once: the worst severity first,
    then the one behind the most workloads (a node down hurts all of its pods' owners), then
    the most direct evidence (the scheduler's verdict over an inference)."""
    ranked: dict[tuple[str, str], JSON] = {}
    behind: dict[tuple[str, str], int] = {}
    workloads = []
    for d in diagnoses:
        found = [
            _finding(d, f)
            for f in sorted(d.findings, key=lambda f: ("root_cause" not in f.facts, f.severity))
        ]
        for f in found:
            if f["class"] != "symptom":
                key = (f["root_cause"], f["object"])
                ranked.setdefault(key, f)
                behind[key] = behind.get(key, 0) + 1
        workloads.append(
            {
                "workload": d.target,
                "severity": d.triage.to_json()["severity"],
                "headline": d.triage.headline,
                "findings": found,
                "proposals": [
                    {"action": p.action, "subject": p.subject, "reason": p.reason, "role": p.role}
                    for p in d.decision.proposals
                ],
            }
        )
    order = sorted(ranked, key=lambda k: (ranked[k]["severity"], -behind[k], -ranked[k]["rank"]))
    return {"workloads": workloads, "ranked": [{**ranked[k], "workloads": behind[k]} for k in order]}
