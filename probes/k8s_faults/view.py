"""The cluster as the fault rules read it (pure): raw API objects by kind, normalized where
two API versions say the same thing differently (core/v1 and events.k8s.io/v1 events), and the
questions every rule asks of them — a workload's pods, ReplicaSets and events, which pods a
selector picks, a pod's node, a quantity as a number.

`ClusterView.of(lists)` takes `{"nodes": [...], "events": [...], ...}` (the `items` of
`kubectl get KIND -o json`, live or from a snapshot); a kind absent from the dict is a kind that
could not be read, which rules treat as "no evidence", never as "nothing there".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
KINDS = (
    "nodes",
    "events",
    "resourcequotas",
    "services",
    "endpointslices",
    "persistentvolumeclaims",
    "persistentvolumes",
    "storageclasses",
    "serviceaccounts",
    "system_pods",
    "pods",
    "replicasets",
    "leases",
    "podmetrics",
    "chaos",
)
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def quantity(text: Any) -> float:
    """A Kubernetes quantity ("250m", "1Gi", "2") as a number; 0 for nothing."""
    if text is None or text == "":
        return 0.0
    from probes._kube import parse_quantity

    return parse_quantity(str(text))


def matches(selector: JSON | None, labels: JSON | None) -> bool:
    """Whether a Service selector (a plain map) or a LabelSelector picks these labels."""
    if not selector:
        return False
    labels = labels or {}
    if "matchLabels" in selector or "matchExpressions" in selector:
        plain, exprs = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    else:
        plain, exprs = selector, []
    if any(labels.get(k) != v for k, v in plain.items()):
        return False
    for expr in exprs:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def show(selector: JSON | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "(none)"


def _event(raw: JSON) -> JSON:
    """core/v1 and events.k8s.io/v1 events in one shape."""
    about = raw.get("involvedObject") or raw.get("regarding") or {}
    return {
        "reason": raw.get("reason") or "",
        "message": raw.get("message") or raw.get("note") or "",
        "kind": about.get("kind") or "",
        "name": about.get("name") or "",
        "namespace": about.get("namespace") or (raw.get("metadata") or {}).get("namespace") or "",
        "type": raw.get("type") or "",
        "count": int(raw.get("count") or 1),
        "at": raw.get("lastTimestamp")
        or raw.get("eventTime")
        or raw.get("firstTimestamp")
        or (raw.get("metadata") or {}).get("creationTimestamp"),
        "source": (raw.get("source") or {}).get("host") or raw.get("reportingInstance") or "",
    }


def name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def labels(obj: JSON) -> JSON:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def condition(obj: JSON, kind: str) -> JSON | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


@dataclass
class ClusterView:
    lists: dict[str, list[JSON]]
    events: list[JSON] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # "namespace/pod" -> its containers' log tail

    @classmethod
    def of(cls, lists: dict[str, list[JSON]], logs: dict[str, str] | None = None) -> ClusterView:
        return cls(lists, [_event(e) for e in lists.get("events") or []], dict(logs or {}))

    def logs_of(self, pods: list[JSON]) -> list[str]:
        return [self.logs[k] for p in pods if (k := f"{namespace(p)}/{name(p)}") in self.logs]

    def has(self, kind: str) -> bool:
        return kind in self.lists

    def items(self, kind: str, ns: str | None = None) -> list[JSON]:
        found = self.lists.get(kind) or []
        return found if ns is None else [o for o in found if namespace(o) == ns]

    def get(self, kind: str, obj_name: str, ns: str | None = None) -> JSON | None:
        return next((o for o in self.items(kind, ns) if name(o) == obj_name), None)

    def events_for(self, names: set[str], ns: str | None = None, reasons: tuple[str, ...] = ()) -> list[JSON]:
        return [
            e
            for e in self.events
            if e["name"] in names
            and (ns is None or e["namespace"] in ("", ns))
            and (not reasons or e["reason"] in reasons)
        ]

    def node_of(self, pod: JSON) -> JSON | None:
        node = (pod.get("spec") or {}).get("nodeName")
        return self.get("nodes", node) if node else None

    def workers(self) -> list[JSON]:
        """Nodes that run workloads: not tainted as the control plane."""
        out = [
            n
            for n in self.items("nodes")
            if not any(
                t.get("key") in CONTROL_PLANE_TAINTS for t in (n.get("spec") or {}).get("taints") or []
            )
        ]
        return out or self.items("nodes")


@dataclass
class Workload:
    """A Deployment, StatefulSet or DaemonSet with what belongs to it."""

    obj: JSON
    pods: list[JSON]
    replicasets: list[JSON]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "Deployment")

    @property
    def name(self) -> str:
        return name(self.obj)

    @property
    def namespace(self) -> str:
        return namespace(self.obj)

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def template(self) -> JSON:
        return dict(((self.obj.get("spec") or {}).get("template") or {}).get("spec") or {})

    @property
    def template_labels(self) -> JSON:
        return dict(
            (((self.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        )

    def containers(self) -> list[JSON]:
        return list(self.template.get("containers") or [])

    def pod_labels(self) -> list[JSON]:
        return [labels(p) for p in self.pods] or [self.template_labels]

    def names(self) -> set[str]:
        """Its own name, its pods' and its ReplicaSets': what its events are about."""
        return {self.name, *(name(p) for p in self.pods), *(name(r) for r in self.replicasets)}

    def desired(self) -> int:
        if self.kind == "DaemonSet":
            return int((self.obj.get("status") or {}).get("desiredNumberScheduled", 0))
        return int((self.obj.get("spec") or {}).get("replicas", 1))

    def available(self) -> int:
        status = self.obj.get("status") or {}
        return int(status.get("numberAvailable" if self.kind == "DaemonSet" else "availableReplicas", 0) or 0)

    def hurt(self) -> bool:
        return self.desired() > 0 and self.available() < self.desired()


def owned(items: list[JSON], owner: JSON) -> list[JSON]:
    uid = (owner.get("metadata") or {}).get("uid")
    return [
        o
        for o in items
        if uid and any(r.get("uid") == uid for r in (o.get("metadata") or {}).get("ownerReferences") or [])
    ]


def workload_of(view: ClusterView, obj: JSON) -> Workload:
    """The workload with its ReplicaSets (by owner) and pods (by owner, else by its selector)."""
    ns = namespace(obj)
    if obj.get("kind") == "Pod":  # a bare pod (snapshots): its own single replica
        uid = (obj.get("metadata") or {}).get("uid")
        return Workload(
            obj, [p for p in view.items("pods", ns) if (p.get("metadata") or {}).get("uid") == uid], []
        )
    rs = owned(view.items("replicasets", ns), obj)
    owners = [obj, *rs]
    pods = [p for o in owners for p in owned(view.items("pods", ns), o)]
    if not pods:
        selector = (obj.get("spec") or {}).get("selector") or {}
        pods = [p for p in view.items("pods", ns) if matches(selector, labels(p))]
    rs.sort(
        key=lambda r: int(
            ((r.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")
            or 0
        ),
        reverse=True,
    )
    return Workload(obj, pods, rs)
