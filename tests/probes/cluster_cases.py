"""A healthy namespace as the apiserver answers it (`kubectl get ... -o json` items: shop/cart
behind service/cart, three workers and a control plane, kube-system's components), and the 40
faults of the cluster-failure benchmark planted in it, one function per root cause, each with
the object at fault the diagnosis must name.

Messages the real control plane writes are quoted from the Kubernetes source (path and constant
named on each); kubelet-side ones (image pulls, probes, OOM) from pkg/kubelet. Recorded from
source, not from a live cluster: the real control plane (issue 21) was not ready in this round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]
NS = "shop"
T0 = "2026-12-08T00:00:00Z"
T1 = "2026-12-08T00:20:00Z"


def _meta(name: str, ns: str | None = NS, **extra: Any) -> JSON:
    out: JSON = {"name": name, "uid": f"uid-{name}", "creationTimestamp": T0, **extra}
    if ns:
        out["namespace"] = ns
    return out


def _node(name: str, control_plane: bool = False) -> JSON:
    return {
        "kind": "Node",
        "metadata": _meta(
            name,
            None,
            labels={
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                **({"node-role.kubernetes.io/control-plane": ""} if control_plane else {"tier": "general"}),
            },
        ),
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}
        if control_plane
        else {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": T1,
                }
            ],
        },
    }


def _container() -> JSON:
    probe = {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
    }
    return {
        "name": "cart",
        "image": "registry.example.com/shop/cart:1.4",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "DB_HOST", "value": "cart-db:5432"}, {"name": "LOG_LEVEL", "value": "info"}],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "livenessProbe": copy.deepcopy(probe),
        "readinessProbe": copy.deepcopy(probe),
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/cart"}],
    }


def _template() -> JSON:
    return {
        "metadata": {"labels": {"app": "cart"}},
        "spec": {
            "serviceAccountName": "cart",
            "containers": [_container()],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def _pod(name: str, node: str, rs: str = "cart-7d9f") -> JSON:
    return {
        "kind": "Pod",
        "metadata": _meta(
            name,
            labels={"app": "cart", "pod-template-hash": rs.split("-")[1]},
            ownerReferences=[{"kind": "ReplicaSet", "name": rs, "uid": f"uid-{rs}"}],
        ),
        "spec": {**_template()["spec"], "nodeName": node},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "cart", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": T0}}}
            ],
        },
    }


def _sys_pod(name: str, node: str, **labels: str) -> JSON:
    return {
        "kind": "Pod",
        "metadata": _meta(name, "kube-system", labels=labels),
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def healthy() -> dict[str, list[JSON]]:
    deploy = {
        "kind": "Deployment",
        "metadata": {
            **_meta("cart", generation=2),
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cart"}}, "template": _template()},
        "status": {
            "replicas": 2,
            "availableReplicas": 2,
            "readyReplicas": 2,
            "updatedReplicas": 2,
            "observedGeneration": 2,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
        },
    }
    owner = [{"kind": "Deployment", "name": "cart", "uid": "uid-cart"}]
    rs = [
        {
            "kind": "ReplicaSet",
            "metadata": {
                **_meta(n, ownerReferences=owner),
                "annotations": {"deployment.kubernetes.io/revision": r},
            },
            "spec": {"replicas": 2 if r == "2" else 0, "template": _template()},
        }
        for n, r in (("cart-7d9f", "2"), ("cart-5c4b", "1"))
    ]
    nodes = [_node("control-plane", True), _node("worker-1"), _node("worker-2"), _node("worker-3")]
    return {
        "deployments": [deploy],
        "replicasets": rs,
        "nodes": nodes,
        "events": [],
        "pods": [_pod("cart-7d9f-abcde", "worker-1"), _pod("cart-7d9f-fghij", "worker-2")],
        "services": [
            {
                "kind": "Service",
                "metadata": _meta("cart"),
                "spec": {
                    "selector": {"app": "cart"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                },
            },
            {
                "kind": "Service",
                "metadata": _meta("cart-db"),
                "spec": {
                    "selector": {"app": "cart-db"},
                    "ports": [{"port": 5432, "targetPort": 5432, "protocol": "TCP"}],
                },
            },
        ],
        "endpointslices": [
            {
                "kind": "EndpointSlice",
                "metadata": _meta("cart-x1", labels={"kubernetes.io/service-name": "cart"}),
                "endpoints": [{"conditions": {"ready": True}}] * 2,
            }
        ],
        "serviceaccounts": [{"kind": "ServiceAccount", "metadata": _meta(n)} for n in ("default", "cart")],
        "resourcequotas": [
            {
                "kind": "ResourceQuota",
                "metadata": _meta("ns-quota"),
                "status": {
                    "hard": {
                        "requests.cpu": "8",
                        "requests.memory": "16Gi",
                        "pods": "20",
                        "services": "10",
                        "requests.storage": "50Gi",
                    },
                    "used": {
                        "requests.cpu": "500m",
                        "requests.memory": "512Mi",
                        "pods": "2",
                        "services": "2",
                        "requests.storage": "0",
                    },
                },
            }
        ],
        "persistentvolumeclaims": [],
        "persistentvolumes": [],
        "storageclasses": [
            {
                "kind": "StorageClass",
                "metadata": _meta(
                    "standard", None, annotations={"storageclass.kubernetes.io/is-default-class": "true"}
                ),
                "provisioner": "rancher.io/local-path",
            }
        ],
        "system_pods": [
            _sys_pod("kube-apiserver-control-plane", "control-plane", component="kube-apiserver"),
            _sys_pod("kube-scheduler-control-plane", "control-plane", component="kube-scheduler"),
            *(
                _sys_pod(
                    f"kube-proxy-{n[-1] if n != 'control-plane' else 'cp'}", n, **{"k8s-app": "kube-proxy"}
                )
                for n in ("control-plane", "worker-1", "worker-2", "worker-3")
            ),
        ],
        "leases": [],
        "podmetrics": [],
        "chaos": [],
    }


Case = Callable[[dict[str, list[JSON]]], None]
CASES: dict[str, tuple[str, Case]] = {}  # root cause -> (object at fault, planting function)


def case(cause: str, obj: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[cause] = (obj, fn)
        return fn

    return register
