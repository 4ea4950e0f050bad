"""RBAC for tests that go through TokenReview and SubjectAccessReview: a namespaced Role bound to
groups, and the daemon's `system:auth-delegator` binding (what the chart creates)."""

from __future__ import annotations

from typing import Any

RBAC = "rbac.authorization.k8s.io"


def grant_role(fake: Any, namespace: str, name: str, rules: list[dict[str, Any]], groups: list[str]) -> None:
    """Role `name` in `namespace` with `rules`, bound to `groups` (the namespace is created)."""
    fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name, "namespace": namespace},
               "rules": rules})
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
               "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]})


def auth_delegator(fake: Any, subject: dict[str, str], name: str = "hemostat") -> None:
    """Let `subject` create TokenReviews and SubjectAccessReviews (the daemon's identity)."""
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:auth-delegator"},
               "subjects": [subject]})
