"""The resource types the fake serves, and the discovery documents describing them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")
BASE_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    """One served ``group/version/plural``; ``storage`` is shared across served versions."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    fields: tuple[str, ...] = BASE_FIELDS
    generation: bool = False
    custom: bool = False
    short_names: tuple[str, ...] = ()
    storage_version: str = ""
    printer_columns: tuple[tuple[str, str, str], ...] = ()  # (name, type, JSON path), CRs only

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``plural.group`` as used in error messages (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage(self) -> tuple[str, str]:
        return (self.group.replace("events.k8s.io", ""), self.plural)

    @property
    def hub_version(self) -> str:
        return self.storage_version or self.api_version

    @property
    def read_only(self) -> bool:
        return "create" not in self.verbs

    def path(self, namespace: str | None, name: str | None = None) -> str:
        prefix = f"/apis/{self.api_version}" if self.group else "/api/v1"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{prefix}{ns}/{self.plural}" + (f"/{name}" if name else "")


POD_FIELDS = (
    *BASE_FIELDS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
    "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
    "status.nominatedNodeName",
)
OBJECT_REF_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                     "fieldPath")
EVENT_FIELDS = (
    *BASE_FIELDS, *(f"involvedObject.{f}" for f in OBJECT_REF_FIELDS),
    "reason", "reportingComponent", "source", "type",
)
NEW_EVENT_FIELDS = (
    *BASE_FIELDS, *(f"regarding.{f}" for f in OBJECT_REF_FIELDS),
    "reason", "reportingController", "type",
)
SCALE_STATUS = ("scale", "status")


def builtin_types() -> list[ResourceType]:
    rt = ResourceType
    return [
        rt("", "v1", "namespaces", "Namespace", False, ("status",),
           fields=(*BASE_FIELDS, "status.phase"), short_names=("ns",)),
        rt("", "v1", "nodes", "Node", False, ("status",),
           fields=(*BASE_FIELDS, "spec.unschedulable"), short_names=("no",)),
        rt("", "v1", "pods", "Pod", True, ("log", "status"), fields=POD_FIELDS,
           generation=True, short_names=("po",)),
        rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
        rt("", "v1", "secrets", "Secret", fields=(*BASE_FIELDS, "type")),
        rt("", "v1", "events", "Event", fields=EVENT_FIELDS, short_names=("ev",)),
        rt("", "v1", "services", "Service", True, ("status",), short_names=("svc",)),
        rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
        rt("", "v1", "resourcequotas", "ResourceQuota", True, ("status",), short_names=("quota",)),
        rt("", "v1", "replicationcontrollers", "ReplicationController", True, ("status",),
           short_names=("rc",)),  # `kubectl cluster-info dump` lists them
        rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("status",),
           short_names=("pvc",)),
        rt("", "v1", "persistentvolumes", "PersistentVolume", False, ("status",), short_names=("pv",)),
        rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, short_names=("sc",)),
        rt("apps", "v1", "deployments", "Deployment", True, SCALE_STATUS, generation=True,
           short_names=("deploy",)),
        rt("apps", "v1", "replicasets", "ReplicaSet", True, SCALE_STATUS, generation=True,
           fields=(*BASE_FIELDS, "status.replicas"), short_names=("rs",)),
        rt("apps", "v1", "statefulsets", "StatefulSet", True, SCALE_STATUS, generation=True,
           short_names=("sts",)),
        rt("apps", "v1", "daemonsets", "DaemonSet", True, ("status",), generation=True,
           short_names=("ds",)),
        rt("apps", "v1", "controllerrevisions", "ControllerRevision"),
        rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
           ("status",), generation=True, short_names=("hpa",)),
        rt("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
           ("status",), generation=True, short_names=("hpa",), storage_version="autoscaling/v2"),
        rt("coordination.k8s.io", "v1", "leases", "Lease"),
        rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
        rt("events.k8s.io", "v1", "events", "Event", fields=NEW_EVENT_FIELDS,
           short_names=("ev",), storage_version="v1"),
        rt("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", verbs=READ_VERBS),
        rt("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, verbs=READ_VERBS),
    ]


@dataclass
class Registry:
    """All served types, looked up by path segments or by ``apiVersion``/``kind``."""

    types: list[ResourceType] = field(default_factory=builtin_types)

    def add(self, rt: ResourceType) -> None:
        self.types = [t for t in self.types if (t.api_version, t.plural) != (rt.api_version,
                                                                                rt.plural)]
        self.types.append(rt)

    def by_path(self, api_version: str, plural: str) -> ResourceType | None:
        for rt in self.types:
            if rt.api_version == api_version and rt.plural == plural:
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self.types:
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def by_storage(self, storage: tuple[str, str]) -> list[ResourceType]:
        return [rt for rt in self.types if rt.storage == storage]

    def group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in self.types:
            versions = groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        for versions in groups.values():
            versions.sort(key=_version_priority)
        return groups


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA before beta before alpha, higher numbers first."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0)
    stability = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stability, -int(match.group(1)), -int(match.group(3) or 0))


def api_versions_doc(host: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


# What `kubectl get all` lists: the kinds the apiserver puts in category `all`.
CATEGORY_ALL = frozenset({("", "pods"), ("", "services"), ("", "replicationcontrollers"), ("apps", "deployments"),
                          ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                          ("autoscaling", "horizontalpodautoscalers"), ("batch", "jobs"), ("batch", "cronjobs")})


def group_list_doc(registry: Registry) -> dict[str, Any]:
    groups = [group_doc(g, vs) for g, vs in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list_doc(registry: Registry, api_version: str) -> dict[str, Any] | None:
    served = [rt for rt in registry.types if rt.api_version == api_version]
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for rt in served:
        resources.append({
            "name": rt.plural, "singularName": rt.kind.lower(), "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": list(rt.verbs), "shortNames": list(rt.short_names),
            **({"categories": ["all"]} if (rt.group, rt.plural) in CATEGORY_ALL else {}),
        })
        resources.extend(_subresource_entry(rt, sub) for sub in rt.subresources)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
            "resources": resources}


def _subresource_entry(rt: ResourceType, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                             "namespaced": rt.namespaced, "kind": rt.kind,
                             "verbs": ["get", "patch", "update"]}
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    elif sub == "log":
        entry.update(kind="Pod", verbs=["get"])
    return entry
