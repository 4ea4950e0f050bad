"""Deployment controller-lite: the ReplicaSet bookkeeping a rollback depends on.

On a Deployment write (create, template or replica change) it finds the owned ReplicaSet whose
template equals the Deployment's semantically (ignoring ``pod-template-hash``, nulls and empty
values, as ``EqualIgnoreHash`` does after defaulting) or creates ``<deployment>-<hash>``, gives
it the next ``deployment.kubernetes.io/revision`` when it is not already the newest (the old
number goes to ``revision-history``), copies the Deployment's annotations (``change-cause``
among them) to it, scales the others to zero, deletes the oldest idle ones beyond
``revisionHistoryLimit`` and reports the rollout as complete in ``status``. Paused Deployments
do not roll. No Pods are created.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi.defaults import semantic
from tests.kubeapi.meta import NAME_ALPHABET, now_rfc3339, stamp_new
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.store import Store

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
DEPLOYMENTS = ("apps", "deployments")
REPLICASETS = ("apps", "replicasets")
# Annotations the controller keeps for itself instead of copying from the Deployment.
NOT_COPIED = frozenset({REVISION, f"{REVISION}-history", "deployment.kubernetes.io/desired-replicas",
                        "deployment.kubernetes.io/max-replicas",
                        "kubectl.kubernetes.io/last-applied-configuration"})


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(_without_hash(template), sort_keys=True).encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:10])


def _without_hash(template: Obj) -> Obj:
    """The template as compared: no ``pod-template-hash``, no nulls or empty values."""
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    result: Obj = semantic(clean)
    return result


def _revision(obj: Obj) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def _max_unavailable(deploy: Obj, replicas: int) -> int:
    strategy = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    raw = strategy.get("maxUnavailable", "25%")
    if isinstance(raw, str) and raw.endswith("%"):
        return math.floor(replicas * int(raw[:-1]) / 100)
    return int(raw)


@dataclass
class DeploymentController:
    """Runs synchronously after each Deployment write, under the store lock."""

    store: Store
    replicaset_type: ResourceType
    unavailable: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def owned(self, deploy: Obj) -> list[Obj]:
        uid, ns = deploy["metadata"]["uid"], deploy["metadata"]["namespace"]
        return [rs for rs in self.store.list_objects(REPLICASETS, ns)
                if any(ref.get("uid") == uid and ref.get("controller")
                       for ref in rs["metadata"].get("ownerReferences") or [])]

    def reconcile(self, namespace: str, name: str) -> None:
        with self.store.cond:
            deploy = self.store.get(DEPLOYMENTS, namespace, name)
            if deploy is None or deploy["spec"].get("paused"):
                return
            replica_sets = self.owned(deploy)
            current = self._select(deploy, replica_sets)
            for rs in replica_sets:
                if rs["metadata"]["name"] != current["metadata"]["name"]:
                    self._scale(rs, 0, 0)
            self._copy_annotations(deploy, current)
            self._clean_up(deploy, current, replica_sets)
            available = self._available(deploy)
            self._scale(current, int(deploy["spec"].get("replicas", 1)), available)
            self._write_deployment(deploy, current, available)

    def _select(self, deploy: Obj, replica_sets: list[Obj]) -> Obj:
        wanted = _without_hash(deploy["spec"]["template"])
        newest = max((_revision(rs) for rs in replica_sets), default=0)
        for rs in replica_sets:
            if _without_hash(rs["spec"]["template"]) == wanted:
                if _revision(rs) < newest:
                    self._set_revision(rs, newest + 1)
                return rs
        return self._create_replica_set(deploy, newest + 1)

    def _copy_annotations(self, deploy: Obj, rs: Obj) -> None:
        """The Deployment's own annotations (change-cause, ...) go onto its current ReplicaSet."""
        annotations = rs["metadata"].setdefault("annotations", {})
        wanted = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
                  if k not in NOT_COPIED}
        if any(annotations.get(k) != v for k, v in wanted.items()):
            annotations.update(wanted)
            rs.update(self.store.write(REPLICASETS, rs, "MODIFIED"))

    def _clean_up(self, deploy: Obj, current: Obj, replica_sets: list[Obj]) -> None:
        """Delete the oldest old ReplicaSets (all scaled to zero) beyond ``revisionHistoryLimit``."""
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = sorted((rs for rs in replica_sets
                       if rs["metadata"]["name"] != current["metadata"]["name"]), key=_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            self.store.remove(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _set_revision(self, rs: Obj, revision: int) -> None:
        annotations = rs["metadata"].setdefault("annotations", {})
        history = [h for h in annotations.get(f"{REVISION}-history", "").split(",") if h]
        annotations[f"{REVISION}-history"] = ",".join([*history, str(_revision(rs))])
        annotations[REVISION] = str(revision)
        rs.update(self.store.write(REPLICASETS, rs, "MODIFIED"))

    def _create_replica_set(self, deploy: Obj, revision: int) -> Obj:
        meta, spec = deploy["metadata"], deploy["spec"]
        pod_hash = template_hash(spec["template"])
        template = copy.deepcopy(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        replicas = int(spec.get("replicas", 1))
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}", "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(revision),
                                "deployment.kubernetes.io/desired-replicas": str(replicas),
                                "deployment.kubernetes.io/max-replicas": str(replicas + 1)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": meta["name"], "uid": meta["uid"],
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }
        return self.store.write(REPLICASETS, stamp_new(rs, self.replicaset_type), "ADDED")

    def _scale(self, rs: Obj, replicas: int, available: int) -> None:
        before = copy.deepcopy(rs)
        rs["spec"]["replicas"] = replicas
        rs["status"] = {"replicas": replicas, "fullyLabeledReplicas": replicas,
                        "readyReplicas": available, "availableReplicas": available,
                        "observedGeneration": rs["metadata"].get("generation", 1)}
        if replicas == 0:
            rs["status"] = {"replicas": 0, "observedGeneration": rs["status"][
                "observedGeneration"]}
        if rs["spec"] != before["spec"]:
            rs["metadata"]["generation"] = int(rs["metadata"].get("generation", 1)) + 1
            rs["status"]["observedGeneration"] = rs["metadata"]["generation"]
        if rs != before:
            rs.update(self.store.write(REPLICASETS, rs, "MODIFIED"))

    def _available(self, deploy: Obj) -> int:
        replicas = int(deploy["spec"].get("replicas", 1))
        key = (deploy["metadata"]["namespace"], deploy["metadata"]["name"],
               template_hash(deploy["spec"]["template"]))
        return min(self.unavailable.get(key, replicas), replicas)

    def _write_deployment(self, deploy: Obj, rs: Obj, available: int) -> None:
        replicas = int(deploy["spec"].get("replicas", 1))
        before = copy.deepcopy(deploy)
        deploy["metadata"].setdefault("annotations", {})[REVISION] = str(_revision(rs))
        status: Obj = {"observedGeneration": deploy["metadata"].get("generation", 1),
                       "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": available, "availableReplicas": available,
                       "conditions": self._conditions(deploy, rs, replicas, available)}
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        deploy["status"] = {k: v for k, v in status.items() if v != 0 or k == "replicas"}
        if deploy != before:
            self.store.write(DEPLOYMENTS, deploy, "MODIFIED")

    def _conditions(self, deploy: Obj, rs: Obj, replicas: int, available: int) -> list[Obj]:
        old = {c["type"]: c for c in (deploy.get("status") or {}).get("conditions") or []}
        minimum = available >= replicas - _max_unavailable(deploy, replicas)
        rs_name = rs["metadata"]["name"]
        done = available >= replicas
        return [
            self._condition(old, "Available", minimum,
                            "MinimumReplicasAvailable" if minimum else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if minimum
                            else "Deployment does not have minimum availability."),
            self._condition(old, "Progressing", True,
                            "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                            f'ReplicaSet "{rs_name}" has successfully progressed.' if done
                            else f'ReplicaSet "{rs_name}" is progressing.'),
        ]

    @staticmethod
    def _condition(old: dict[str, Obj], kind: str, ok: bool, reason: str, message: str) -> Obj:
        status = "True" if ok else "False"
        previous = old.get(kind) or {}
        now = now_rfc3339()
        same = previous.get("status") == status
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": previous.get("lastUpdateTime", now) if same and previous.get(
                    "reason") == reason else now,
                "lastTransitionTime": previous.get("lastTransitionTime", now) if same else now}
