"""StatefulSet and DaemonSet controller-lite: the ControllerRevisions their rollbacks go through.

After each StatefulSet or DaemonSet write it finds the owned ``apps/v1`` ControllerRevision whose
``data`` (``{"spec": {"template": {..., "$patch": "replace"}}}``, what ``kubectl rollout undo``
applies as a strategic merge patch) equals the object's template semantically, or creates
``<name>-<hash>`` with the next ``revision``; rolling back to an older template gives its
revision the next number, as the real controllers do. Status reports the rollout complete
(``currentRevision``/``updateRevision`` for StatefulSets, the ``*NumberScheduled`` counts for a
one-node DaemonSet). No Pods are created.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tests.kubeapi.defaults import semantic
from tests.kubeapi.meta import NAME_ALPHABET, stamp_new
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.store import Store

Obj = dict[str, Any]
REVISIONS = ("apps", "controllerrevisions")
WORKLOADS = {("apps", "statefulsets"): "StatefulSet", ("apps", "daemonsets"): "DaemonSet"}


def revision_data(obj: Obj) -> Obj:
    return {"spec": {"template": {**copy.deepcopy(obj["spec"]["template"]), "$patch": "replace"}}}


def _hash(data: Obj) -> str:
    digest = hashlib.sha256(json.dumps(semantic(data), sort_keys=True).encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:10])


@dataclass
class RevisionController:
    """Runs synchronously after each StatefulSet/DaemonSet write, under the store lock."""

    store: Store
    revision_type: ResourceType

    def owned(self, obj: Obj) -> list[Obj]:
        uid, ns = obj["metadata"]["uid"], obj["metadata"]["namespace"]
        return [r for r in self.store.list_objects(REVISIONS, ns)
                if any(ref.get("uid") == uid and ref.get("controller")
                       for ref in r["metadata"].get("ownerReferences") or [])]

    def reconcile(self, storage: tuple[str, str], namespace: str, name: str) -> None:
        with self.store.cond:
            obj = self.store.get(storage, namespace, name)
            if obj is None:
                return
            current = self._select(obj, WORKLOADS[storage])
            before = copy.deepcopy(obj)
            obj["status"] = self._status(obj, WORKLOADS[storage], current["metadata"]["name"])
            if obj != before:
                self.store.write(storage, obj, "MODIFIED")

    def _select(self, obj: Obj, kind: str) -> Obj:
        data = revision_data(obj)
        revisions = self.owned(obj)
        newest = max((int(r.get("revision", 0)) for r in revisions), default=0)
        for rev in revisions:
            if semantic(rev.get("data")) == semantic(data):
                if int(rev.get("revision", 0)) < newest:
                    rev["revision"] = newest + 1
                    rev.update(self.store.write(REVISIONS, rev, "MODIFIED"))
                return rev
        meta = obj["metadata"]
        rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
               "metadata": {"name": f"{meta['name']}-{_hash(data)}", "namespace": meta["namespace"],
                            "labels": dict((obj["spec"].get("selector") or {}).get("matchLabels") or {}),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind,
                                                 "name": meta["name"], "uid": meta["uid"],
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "data": data, "revision": newest + 1}
        return self.store.write(REVISIONS, stamp_new(rev, self.revision_type), "ADDED")

    @staticmethod
    def _status(obj: Obj, kind: str, revision: str) -> Obj:
        generation = obj["metadata"].get("generation", 1)
        if kind == "DaemonSet":
            return {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1,
                    "updatedNumberScheduled": 1, "numberAvailable": 1, "numberMisscheduled": 0,
                    "observedGeneration": generation}
        replicas = int(obj["spec"].get("replicas", 1))
        return {"replicas": replicas, "readyReplicas": replicas, "currentReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas,
                "currentRevision": revision, "updateRevision": revision,
                "observedGeneration": generation, "collisionCount": 0}
