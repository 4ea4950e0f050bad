"""GitOps on the test apiserver: the CRDs, and a controller that re-applies git like Argo CD does.

`register_gitops_crds(fake)` serves Argo CD `Application`, Argo Rollouts `Rollout`, KEDA
`ScaledObject`, Flux `Kustomization`/`GitRepository` and `HelmRelease`, with their printer
columns. `GitOpsController` plays Argo CD's application controller (and Flux's
kustomize-controller) against a real git repository, usually a bare one that the code under
test pushes to:

* an Application's `spec.source` (`repoURL` = a repository path, `path`, `targetRevision` = a
  branch) or a Kustomization's GitRepository (`spec.url`, `spec.ref.branch`) names the
  manifests; every `*.yaml` under the path is applied, stamped with the tracking annotation or
  the Flux labels;
* with `syncPolicy.automated`, a new commit is synced; with `selfHeal` (always, for Flux unless
  `suspend`), live drift is put back — so a live rollback is visibly undone and a git revert
  visibly holds; `ignoreDifferences` on `/spec/replicas` keeps the live replica count;
* `operation.sync.revision` (what `argocd app rollback` writes) syncs that revision once;
* status reports the synced revision, `Synced`/`OutOfSync`, health from the Deployment's
  availability, and the sync history.

`reconcile()` runs one pass (tests call it to be deterministic); `start()` runs passes in a
thread every `interval_s`, as a real controller would while an action waits for it.
"""

from __future__ import annotations

import abc
import subprocess
import threading
from typing import Any

import yaml

from tests.kubeapi.server import FakeApiServer

Obj = dict[str, Any]
ARGO, FLUX_K, FLUX_S, FLUX_H = ("argoproj.io", "kustomize.toolkit.fluxcd.io",
                                "source.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io")
TRACKING_ID = "argocd.argoproj.io/tracking-id"
# (group, version, plural, kind, printer columns, short names), as the projects' CRDs declare them.
CRDS = [
    (ARGO, "v1alpha1", "applications", "Application",
     (("Sync Status", "string", ".status.sync.status"),
      ("Health Status", "string", ".status.health.status")), ("app", "apps")),
    (ARGO, "v1alpha1", "rollouts", "Rollout",
     (("Desired", "integer", ".spec.replicas"), ("Current", "integer", ".status.replicas"),
      ("Available", "integer", ".status.availableReplicas")), ("ro",)),
    ("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject",
     (("ScaleTargetName", "string", ".status.scaleTargetGVKR.resource"),
      ("Min", "integer", ".spec.minReplicaCount"), ("Max", "integer", ".spec.maxReplicaCount")),
     ("so",)),
    (FLUX_K, "v1", "kustomizations", "Kustomization",
     (("Ready", "string", ".status.conditions.0.status"),), ("ks",)),
    (FLUX_S, "v1", "gitrepositories", "GitRepository", (("URL", "string", ".spec.url"),), ("gitrepo",)),
    (FLUX_H, "v2", "helmreleases", "HelmRelease", (("Ready", "string", ".status.conditions.0.status"),),
     ("hr",)),
]


def register_gitops_crds(fake: FakeApiServer) -> None:
    for group, version, plural, kind, columns, short in CRDS:
        fake.register_custom_resource(group, version, plural, kind, printer_columns=columns,
                                      short_names=short)


def git(repo: str, *args: str) -> str:
    done = subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def manifests_at(repo: str, revision: str, path: str) -> list[Obj]:
    """Every YAML document under `path` at `revision` of `repo`."""
    names = git(repo, "ls-tree", "-r", "--name-only", revision, "--", path or ".").splitlines()
    docs: list[Obj] = []
    for name in sorted(n for n in names if n.endswith((".yaml", ".yml"))):
        docs += [d for d in yaml.safe_load_all(git(repo, "show", f"{revision}:{name}")) if d]
    return docs


class ControllerLoop(abc.ABC):
    """A controller's passes over the fake: `reconcile()` once (deterministic, for tests), or every
    `interval_s` in a thread between `start()` and `stop()`, as a real controller runs."""

    def __init__(self, fake: FakeApiServer, interval_s: float = 0.05) -> None:
        self.fake, self.interval_s = fake, interval_s
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ControllerLoop:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.reconcile()

    @abc.abstractmethod
    def reconcile(self) -> None:
        """One pass over the fake's objects (each controller's own)."""


class GitOpsController(ControllerLoop):
    """One Argo CD / Flux controller over every Application and Kustomization in the fake."""

    def reconcile(self) -> None:
        with self.lock:
            for app in self.fake.list_objects(ARGO, "v1alpha1", "applications"):
                self._application(app)
            for kustomization in self.fake.list_objects(FLUX_K, "v1", "kustomizations"):
                self._kustomization(kustomization)

    # -- Argo CD ---------------------------------------------------------------------------------

    def _application(self, app: Obj) -> None:
        spec, status = app["spec"], app.get("status") or {}
        source = spec["source"]
        head = git(source["repoURL"], "rev-parse", source.get("targetRevision") or "HEAD")
        operation = (app.get("operation") or {}).get("sync")
        automated = (spec.get("syncPolicy") or {}).get("automated")
        synced = (status.get("sync") or {}).get("revision")
        if operation:
            revision = git(source["repoURL"], "rev-parse", operation.get("revision") or head)
            app.pop("operation", None)
        elif automated and (synced != head or automated.get("selfHeal")):
            revision = head
        else:
            self._report(app, synced or head, head, record=False)
            return
        self._apply(app, source["repoURL"], revision, source.get("path", ""), spec)
        self._report(app, revision, head, record=revision != synced or bool(operation))

    def _apply(self, owner: Obj, repo: str, revision: str, path: str, spec: Obj) -> None:
        name, namespace = owner["metadata"]["name"], owner["metadata"]["namespace"]
        keep_replicas = any("/spec/replicas" in (r.get("jsonPointers") or [])
                            for r in spec.get("ignoreDifferences") or [])
        for doc in manifests_at(repo, revision, path):
            meta = doc.setdefault("metadata", {})
            meta.setdefault("namespace", spec.get("destination", {}).get("namespace")
                            or spec.get("targetNamespace") or namespace)
            if owner["kind"] == "Application":
                meta.setdefault("annotations", {})[TRACKING_ID] = (
                    f"{name}:{doc['apiVersion'].split('/')[0] if '/' in doc['apiVersion'] else ''}"
                    f"/{doc['kind']}:{meta['namespace']}/{meta['name']}")
            else:
                meta.setdefault("labels", {}).update({f"{FLUX_K}/name": name,
                                                      f"{FLUX_K}/namespace": namespace})
            self.fake.apply(doc, keep=("spec.replicas",) if keep_replicas else ())

    def _health(self, app: Obj) -> str:
        dest = (app["spec"].get("destination") or {}).get("namespace") or "default"
        for deploy in self.fake.list_objects("apps", "v1", "deployments", dest):
            ann = (deploy["metadata"].get("annotations") or {}).get(TRACKING_ID, "")
            if ann.startswith(f"{app['metadata']['name']}:"):
                status, want = deploy.get("status") or {}, deploy["spec"].get("replicas", 1)
                if status.get("availableReplicas", 0) < want:
                    return "Degraded"
        return "Healthy"

    def _report(self, app: Obj, revision: str, head: str, record: bool) -> None:
        status = app.setdefault("status", {})
        history = status.setdefault("history", [])
        if record:
            history.append({"id": len(history), "revision": revision,
                            "source": app["spec"]["source"]})
            status["operationState"] = {"phase": "Succeeded",
                                        "syncResult": {"revision": revision}}
        status["sync"] = {"status": "Synced" if revision == head else "OutOfSync",
                          "revision": revision}
        status["health"] = {"status": self._health(app)}
        self.fake.put_custom(app)

    # -- Flux --------------------------------------------------------------------------------------

    def _kustomization(self, kustomization: Obj) -> None:
        spec = kustomization["spec"]
        ref = spec.get("sourceRef") or {}
        source = self.fake.get_object(f"{FLUX_S}/v1", "gitrepositories",
                                      ref.get("namespace") or kustomization["metadata"]["namespace"],
                                      ref.get("name", ""))
        if source is None or spec.get("suspend"):
            return
        branch = (source["spec"].get("ref") or {}).get("branch", "main")
        head = git(source["spec"]["url"], "rev-parse", branch)
        self._apply(kustomization, source["spec"]["url"], head, spec.get("path", ""), spec)
        kustomization["status"] = {"lastAppliedRevision": f"{branch}@sha1:{head}",
                                   "conditions": [{"type": "Ready", "status": "True",
                                                   "reason": "ReconciliationSucceeded"}]}
        self.fake.put_custom(kustomization)
