"""Who owns a live object: Argo CD or Flux, read from the object's own labels and annotations.

Pure functions over raw JSON, shared by the `k8s-workload` probe (the diagnosis says "checkout is
managed by Argo CD app argocd/checkout, auto-sync with self-heal") and the actions that must not
make a live edit the controller will silently undo. Evidence, strongest first: Argo CD's
`argocd.argoproj.io/tracking-id` annotation (`[appns_]app:group/kind:ns/name`), Flux's
`kustomize.toolkit.fluxcd.io/{name,namespace}` and `helm.toolkit.fluxcd.io/{name,namespace}`
labels, then Argo CD's default `app.kubernetes.io/instance` label — which Helm charts set too,
so it counts only when the Application it names exists. `describe` turns the controller's object
(Application, Kustomization, HelmRelease) into the facts a decision needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

JSON = dict[str, Any]
ARGOCD_NAMESPACE = "argocd"  # where Argo CD keeps Applications unless the tracking id says
TRACKING_ID = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
# kind -> (group, version, plural): the controller objects this module reads.
KINDS = {
    "Application": ("argoproj.io", "v1alpha1", "applications"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
}
TOOLS = {"Application": "Argo CD", "Kustomization": "Flux", "HelmRelease": "Flux"}


@dataclass(frozen=True)
class Owner:
    """The GitOps object that claims a live object, and which mark said so."""

    kind: str
    namespace: str
    name: str
    via: str
    confirmed_by_label_only: bool = False

    @property
    def api(self) -> tuple[str, str, str]:
        return KINDS[self.kind]


def owner_of(obj: JSON) -> Owner | None:
    """The GitOps owner named by `obj`'s metadata, or None."""
    meta = obj.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    tracking = annotations.get(TRACKING_ID)
    if tracking and ":" in tracking:
        app = tracking.split(":", 1)[0]
        namespace, _, name = app.rpartition("_")
        return Owner("Application", namespace or ARGOCD_NAMESPACE, name, TRACKING_ID)
    for kind, prefix in (("Kustomization", "kustomize"), ("HelmRelease", "helm")):
        name = labels.get(f"{prefix}.toolkit.fluxcd.io/name")
        if name:
            namespace = labels.get(f"{prefix}.toolkit.fluxcd.io/namespace") or meta.get("namespace", "")
            return Owner(kind, namespace, name, f"{prefix}.toolkit.fluxcd.io/name")
    if labels.get(INSTANCE_LABEL):
        return Owner("Application", ARGOCD_NAMESPACE, labels[INSTANCE_LABEL], INSTANCE_LABEL, True)
    return None


def _ignores_replicas(app_spec: JSON, kind: str) -> bool:
    for rule in app_spec.get("ignoreDifferences") or []:
        if rule.get("kind") not in (None, kind):
            continue
        paths = list(rule.get("jsonPointers") or []) + list(rule.get("jqPathExpressions") or [])
        if any(p in ("/spec/replicas", ".spec.replicas") for p in paths):
            return True
    return False


def _argocd(app: JSON, workload_kind: str) -> JSON:
    spec, status = app.get("spec") or {}, app.get("status") or {}
    automated = (spec.get("syncPolicy") or {}).get("automated")
    source = spec.get("source") or {}
    return {"auto_sync": automated is not None and automated.get("enabled", True) is not False,
            "self_heal": bool((automated or {}).get("selfHeal")),
            "suspended": automated is None,
            "revision": (status.get("sync") or {}).get("revision"),
            "sync_status": (status.get("sync") or {}).get("status"),
            "health": (status.get("health") or {}).get("status"),
            "ignores_replicas": _ignores_replicas(spec, workload_kind),
            "source": {k: source.get(k) for k in ("repoURL", "path", "targetRevision")},
            "history": [{"id": h.get("id"), "revision": h.get("revision")}
                        for h in status.get("history") or []][-10:]}


def _flux(obj: JSON, kind: str) -> JSON:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    suspended = bool(spec.get("suspend"))
    drift = kind == "Kustomization" or ((spec.get("driftDetection") or {}).get("mode") == "enabled")
    ready: JSON = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return {"auto_sync": not suspended, "self_heal": drift and not suspended, "suspended": suspended,
            "revision": str(status.get("lastAppliedRevision") or "").rsplit(":", 1)[-1] or None,
            "sync_status": ready.get("reason"),
            "health": "Healthy" if ready.get("status") == "True" else ready.get("status"),
            "ignores_replicas": False, "source": {"sourceRef": spec.get("sourceRef"),
                                                  "path": spec.get("path")}, "history": []}


def describe(owner: Owner, controller: JSON | None, workload_kind: str = "Deployment") -> JSON:
    """The facts about `owner` (plain JSON for observations and plans); `controller` is its
    object as read from the cluster, None when it could not be read."""
    facts: JSON = {**asdict(owner), "tool": TOOLS[owner.kind], "found": controller is not None}
    if controller is None:
        return facts
    facts.update(_argocd(controller, workload_kind) if owner.kind == "Application"
                 else _flux(controller, owner.kind))
    return facts


def summary(subject: str, facts: JSON) -> str:
    """One line for the diagnosis: who manages `subject` and whether it undoes live edits."""
    who = f"{facts['tool']} {'app' if facts['kind'] == 'Application' else facts['kind']} " \
          f"{facts['namespace']}/{facts['name']}"
    if not facts.get("found"):
        return f"{subject} is marked as managed by {who} ({facts['via']}), which could not be read"
    if facts.get("suspended"):
        mode = "auto-sync suspended"
    else:
        mode = "auto-sync with self-heal" if facts.get("self_heal") else "auto-sync without self-heal"
    return f"{subject} is managed by {who}, {mode}"


def undoes_live_edits(facts: JSON | None) -> bool:
    """True when a live edit would be reverted: by self-heal now, or by the next auto-sync."""
    return bool(facts and facts.get("found") and facts.get("auto_sync"))


# What the actions do on a GitOps-managed object when the policy has no `gitops` section; the
# policy's GitOpsRule (policies/model.py) has the same defaults, and a test holds them equal.
DEFAULT_RULE: JSON = {"gitops_rollback": "git-revert", "gitops_push": "review",
                      "gitops_may_suspend_sync": False, "gitops_live_allowed": False,
                      "gitops_sync_timeout_s": 300.0}


def rule_from_limits(limits: JSON) -> JSON:
    """The GitOps rule in force: the verdict's `gitops_*` limits over the defaults."""
    return {key: limits.get(key, value) for key, value in DEFAULT_RULE.items()}
