"""The Kubernetes permissions a probe or an action needs, declared next to the code that calls.

Each Kubernetes probe and action module holds a `KUBE_RULES` tuple: one `KubeRule` per
(API group, resource) it calls, with the verbs it uses and which objects (`scope`):

- `namespace`: any object of the resource in a watched namespace (a list cannot be cut by name);
- `target`: only the targets' own Deployments (and HPAs named after them): Role `resourceNames`;
- `configured`: only the objects named in the action's chart values (`configMaps`);
- `gitops`: the GitOps controller's own objects (Argo CD Applications, Flux Kustomizations and
  HelmReleases), in the namespaces the chart's `gitops.namespaces` lists (argocd, flux-system);
- `cluster`: a cluster-scoped resource (nodes, PersistentVolumes, StorageClasses): read-only in
  a ClusterRole of its own (`rbac.clusterReads`);
- `system`: kube-system's pods (is kube-proxy, is the scheduler running): a Role in kube-system.

Two tests hold the tables true: `tests/test_kube_rules.py` runs each module against the fake
apiserver and compares the requests it really made with its table, and `tests/helm/test_chart.py`
compares the Role the chart renders with the union of the tables of the enabled actions. A new
probe or action that talks to Kubernetes adds its table here and a scenario there
(docs/install.md, "Permissions").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Scope = Literal["namespace", "target", "configured", "gitops", "cluster", "system"]


@dataclass(frozen=True)
class KubeRule:
    """One line of a Role: `verbs` on `group`/`resource`, limited to the objects `scope` names."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    scope: Scope = "namespace"
    why: str = ""

    def grants(self) -> set[tuple[str, str, str, Scope]]:
        """One (group, resource, verb, scope) per verb: the unit the tests compare."""
        return {(self.group, self.resource, verb, self.scope) for verb in self.verbs}


def grants_of(rules: Iterable[KubeRule]) -> set[tuple[str, str, str, Scope]]:
    """Every single permission a set of tables grants."""
    return {grant for rule in rules for grant in rule.grants()}


# Every action that changes an object records a core/v1 Event on it (actions/_kube.write_event).
EVENTS = KubeRule("", "events", ("create",), why="an Event on each object an action changed")


def gitops_rules(verbs: tuple[str, ...], why: str) -> tuple[KubeRule, ...]:
    """`verbs` on the objects of every GitOps controller Hemostat recognises (agent/model/gitops)."""
    return (KubeRule("argoproj.io", "applications", verbs, "gitops", why),
            KubeRule("kustomize.toolkit.fluxcd.io", "kustomizations", verbs, "gitops", why),
            KubeRule("helm.toolkit.fluxcd.io", "helmreleases", verbs, "gitops", why))
