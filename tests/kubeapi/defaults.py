"""Defaulting, as the apiserver's ``SetObjectDefaults_*`` fill fields a client left out.

What ``kubectl get -o yaml`` shows right after a create: a Deployment's strategy (RollingUpdate
25%/25%), ``revisionHistoryLimit`` 10 and ``progressDeadlineSeconds`` 600; pod templates'
restart and DNS policies, grace period, scheduler and ``securityContext``; containers'
``imagePullPolicy`` (Always for ``:latest`` or no tag, else IfNotPresent), termination message
path and policy, ``resources: {}`` and port ``protocol: TCP``; StatefulSets' and DaemonSets'
update strategies; Services' type, session affinity and target ports. JSON ``null`` fields in a
spec are dropped, as decoding into Go types and encoding again would (a template sent with
``creationTimestamp: null`` compares equal to one without it). Applied on create, update and
patch, before validation.
"""

from __future__ import annotations

from typing import Any

from tests.kubeapi.resources import ResourceType

Obj = dict[str, Any]
POD_SPEC_DEFAULTS: Obj = {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                          "dnsPolicy": "ClusterFirst", "securityContext": {},
                          "schedulerName": "default-scheduler"}
CONTAINER_DEFAULTS: Obj = {"terminationMessagePath": "/dev/termination-log",
                           "terminationMessagePolicy": "File", "resources": {}}
WORKLOAD_DEFAULTS: dict[str, Obj] = {
    "Deployment": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                   "strategy": {"type": "RollingUpdate"}},
    "ReplicaSet": {"replicas": 1},
    "StatefulSet": {"replicas": 1, "podManagementPolicy": "OrderedReady",
                    "revisionHistoryLimit": 10,
                    "updateStrategy": {"type": "RollingUpdate"},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                             "whenScaled": "Retain"}},
    "DaemonSet": {"revisionHistoryLimit": 10, "updateStrategy": {"type": "RollingUpdate"}},
}
ROLLING: dict[str, Obj] = {
    "Deployment": {"maxUnavailable": "25%", "maxSurge": "25%"},
    "StatefulSet": {"partition": 0},
    "DaemonSet": {"maxUnavailable": 1, "maxSurge": 0},
}


def drop_nulls(node: Any) -> Any:
    """The value without ``null`` map entries, all the way down."""
    if isinstance(node, dict):
        return {k: drop_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [drop_nulls(v) for v in node]
    return node


def pull_policy(image: str) -> str:
    """``Always`` for an untagged or ``:latest`` image (no digest), else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(container: Obj) -> None:
    for key, value in CONTAINER_DEFAULTS.items():
        container.setdefault(key, {} if isinstance(value, dict) else value)
    if container.get("image"):
        container.setdefault("imagePullPolicy", pull_policy(str(container["image"])))
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec(spec: Obj) -> None:
    for key, value in POD_SPEC_DEFAULTS.items():
        spec.setdefault(key, {} if isinstance(value, dict) else value)
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                _container(container)


def _workload(kind: str, spec: Obj) -> None:
    for key, value in WORKLOAD_DEFAULTS[kind].items():
        spec.setdefault(key, dict(value) if isinstance(value, dict) else value)
    strategy = spec.get("strategy") if kind == "Deployment" else spec.get("updateStrategy")
    if isinstance(strategy, dict) and strategy.get("type") == "RollingUpdate" and kind in ROLLING:
        rolling = strategy.setdefault("rollingUpdate", {})
        for key, value in ROLLING[kind].items():
            rolling.setdefault(key, value)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod_spec(template["spec"])


def _service(spec: Obj) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def apply_defaults(obj: Obj, rt: ResourceType) -> None:
    """Fill ``obj``'s defaults in place (built-in types only; custom resources are as sent)."""
    if rt.custom or not isinstance(obj.get("spec"), dict):
        return
    obj["spec"] = spec = drop_nulls(obj["spec"])
    if rt.kind in WORKLOAD_DEFAULTS:
        _workload(rt.kind, spec)
    elif rt.kind == "Pod":
        pod_spec(spec)
    elif rt.kind == "Service":
        _service(spec)


def semantic(node: Any) -> Any:
    """A value with empty maps, empty lists and nulls removed: Go's ``Semantic.DeepEqual``
    treats nil and empty alike, so two templates equal by it compare equal here."""
    if isinstance(node, dict):
        pruned = {k: semantic(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(node, list):
        return [semantic(v) for v in node]
    return node
