"""Argo Rollouts on the test apiserver: a controller-lite for ``Rollout`` objects.

For each Rollout it keeps one ReplicaSet per pod template (``<name>-<hash>``, owned by the
Rollout, ``rollout.argoproj.io/revision`` numbered like a Deployment's) and plays a canary: with a
``pause`` step a new template is ``Paused`` beside the stable ReplicaSet (without one it is
promoted at once); ``status.abort`` (what ``kubectl argo rollouts abort`` sets) scales the canary to
zero and reports ``Degraded``/``RolloutAborted`` while the stable ReplicaSet serves; a template
equal to the stable one (``undo``) is ``Healthy`` again and clears the abort. Status carries
``stableRS``, ``currentPodHash``, ``phase``, ``message`` and the replica counts.
``reconcile()`` runs one pass; ``start()`` runs passes in a thread like a real controller.
"""

from __future__ import annotations

from typing import Any

from tests.kubeapi.controller import template_hash
from tests.kubeapi.gitops import ControllerLoop

Obj = dict[str, Any]
REVISION = "rollout.argoproj.io/revision"
HASH_LABEL = "rollouts-pod-template-hash"


class RolloutsController(ControllerLoop):
    """Argo Rollouts' controller, reduced to what abort and undo need."""

    def reconcile(self) -> None:
        with self.lock:
            self._pass()

    def _pass(self) -> None:
        for rollout in self.fake.list_objects("argoproj.io", "v1alpha1", "rollouts"):
            self._rollout(rollout)

    def _replica_sets(self, rollout: Obj) -> list[Obj]:
        uid = rollout["metadata"]["uid"]
        return [rs for rs in self.fake.list_objects("apps", "v1", "replicasets",
                                                    rollout["metadata"]["namespace"])
                if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]

    def _ensure(self, rollout: Obj, pod_hash: str, owned: list[Obj]) -> None:
        name = f"{rollout['metadata']['name']}-{pod_hash}"
        if any(rs["metadata"]["name"] == name for rs in owned):
            return
        revision = 1 + max((int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
                            for rs in owned), default=0)
        template = {**rollout["spec"]["template"]}
        labels = {**(template.get("metadata") or {}).get("labels", {}), HASH_LABEL: pod_hash}
        template["metadata"] = {**(template.get("metadata") or {}), "labels": labels}
        self.fake.seed({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": name, "namespace": rollout["metadata"]["namespace"],
                                     "labels": labels, "annotations": {REVISION: str(revision)},
                                     "ownerReferences": [{
                                         "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                         "name": rollout["metadata"]["name"],
                                         "uid": rollout["metadata"]["uid"], "controller": True}]},
                        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                                 "template": template}, "status": {"replicas": 0}})

    def _rollout(self, rollout: Obj) -> None:
        spec, status = rollout["spec"], dict(rollout.get("status") or {})
        pod_hash = template_hash(spec["template"])
        self._ensure(rollout, pod_hash, self._replica_sets(rollout))
        replicas = int(spec.get("replicas", 1))
        steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
        pauses = any("pause" in step for step in steps)
        stable = pod_hash if not status.get("stableRS") or not pauses else status["stableRS"]
        if pod_hash == stable:
            status.update(phase="Healthy", message="", availableReplicas=replicas)
            status.pop("abort", None)
        elif status.get("abort"):
            status.update(phase="Degraded", availableReplicas=replicas,
                          message="RolloutAborted: Rollout aborted update to revision "
                                  f"{pod_hash}")
        else:
            status.update(phase="Paused", message="CanaryPauseStep", availableReplicas=replicas)
        status.update(stableRS=stable, currentPodHash=pod_hash, replicas=replicas,
                      observedGeneration=str(rollout["metadata"].get("generation", 1)))
        if status != rollout.get("status"):
            self.fake.put_custom({**rollout, "status": status})

