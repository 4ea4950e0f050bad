"""RBAC as kube-apiserver's authorizer evaluates it, over the fake's stored Role, ClusterRole,
RoleBinding and ClusterRoleBinding objects.

A request is allowed when some binding whose subjects include the user (by name, group, or
service account) refers to a role with a rule matching verb, API group, resource (with
`resource/subresource` and `*/subresource` forms), and resourceNames (a rule with
resourceNames never matches a request without a name); ClusterRoleBindings apply everywhere,
RoleBindings only in their namespace. Non-resource requests match `nonResourceURLs` (exact, or a
`prefix*`). Members of `system:masters` may do anything. RBAC only allows: a miss is "no opinion".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi.resources import ResourceType

GROUP = "rbac.authorization.k8s.io"
STORAGE = {kind: (GROUP, plural) for kind, plural in (
    ("Role", "roles"), ("ClusterRole", "clusterroles"),
    ("RoleBinding", "rolebindings"), ("ClusterRoleBinding", "clusterrolebindings"))}
Obj = dict[str, Any]


def rbac_types() -> list[ResourceType]:
    rt = ResourceType
    return [rt(GROUP, "v1", "roles", "Role"), rt(GROUP, "v1", "rolebindings", "RoleBinding"),
            rt(GROUP, "v1", "clusterroles", "ClusterRole", False),
            rt(GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", False)]


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)

    def info(self) -> Obj:
        out: Obj = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = self.extra
        return out


@dataclass(frozen=True)
class Attributes:
    """What is asked: a resource request (verb, group, resource, ...) or a non-resource path."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""

    @classmethod
    def from_spec(cls, spec: Obj) -> Attributes:
        if spec.get("nonResourceAttributes"):
            nra = spec["nonResourceAttributes"]
            return cls(verb=nra.get("verb", ""), path=nra.get("path", ""))
        ra = spec.get("resourceAttributes") or {}
        return cls(verb=ra.get("verb", ""), group=ra.get("group", ""), resource=ra.get("resource", ""),
                   subresource=ra.get("subresource", ""), name=ra.get("name", ""),
                   namespace=ra.get("namespace", ""))


class Authorizer:
    """Answers (allowed, reason) from the RBAC objects in the fake's store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def _list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return list(self.store.list_objects(STORAGE[kind], namespace))

    def authorize(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        if "system:masters" in user.groups:
            return True, "allowed: member of system:masters"
        for binding, role in self._roles_of(user, attrs.namespace):
            if any(_rule_matches(rule, attrs) for rule in role.get("rules") or ()):
                return True, (f'RBAC: allowed by {binding["kind"]} "{binding["metadata"]["name"]}" '
                              f'of {role["kind"]} "{role["metadata"]["name"]}" to {_who(user)}')
        return False, ""

    def _roles_of(self, user: User, namespace: str) -> Iterator[tuple[Obj, Obj]]:
        bindings = [dict(b, kind="ClusterRoleBinding") for b in self._list("ClusterRoleBinding")]
        if namespace:
            bindings += [dict(b, kind="RoleBinding") for b in self._list("RoleBinding", namespace)]
        for binding in bindings:
            own_ns = binding["metadata"].get("namespace", "")
            if not any(_subject_matches(s, user, own_ns) for s in binding.get("subjects") or ()):
                continue
            role = self._role(binding.get("roleRef") or {}, own_ns)
            if role is not None:
                yield binding, role

    def _role(self, ref: Obj, namespace: str) -> Obj | None:
        kind = ref.get("kind")
        if kind not in ("Role", "ClusterRole"):
            return None
        ns = namespace if kind == "Role" else ""
        found = self.store.get(STORAGE[kind], ns, ref.get("name", ""))
        return None if found is None else dict(found, kind=kind)


def _who(user: User) -> str:
    return f'User "{user.name}"'


def _subject_matches(subject: Obj, user: User, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


def _has(values: Any, wanted: str) -> bool:
    values = values or []
    return "*" in values or wanted in values


def _rule_matches(rule: Obj, attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource:
        return _path_matches(rule.get("nonResourceURLs") or [], attrs.path)
    if not _has(rule.get("apiGroups"), attrs.group) or not _resource_matches(rule, attrs):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _resource_matches(rule: Obj, attrs: Attributes) -> bool:
    resources = rule.get("resources") or []
    if not attrs.subresource:
        return "*" in resources or attrs.resource in resources
    combined = f"{attrs.resource}/{attrs.subresource}"
    return any(r in ("*", combined, f"*/{attrs.subresource}") for r in resources)


def _path_matches(urls: list[str], path: str) -> bool:
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])) for u in urls)
