"""Per-kind columns of server-side printing: what ``kubectl get [-o wide]`` shows for each type.

Each printer is (columns, row function); a column is (name, type, priority), priority 1 being
the ``-o wide`` extras. The columns and cell values follow the apiserver's printers
(``pkg/printers/internalversion``), for the types the fake serves; anything else gets the
default ``Name``/``Created At`` pair, as the apiserver's default table convertor gives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Column = tuple[str, str, int]
Row = Callable[[Obj, datetime], list[Any]]
NONE = "<none>"


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``, the AGE column's format."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 120:
        return f"{max(s, 0)}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m" + (f"{s % 60}s" if s % 60 else "")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" + (f"{minutes % 60}m" if minutes % 60 else "")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" + (f"{hours % 24}h" if hours % 24 else "")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y" + (f"{days % 365}d" if days % 365 else "")
    return f"{days // 365}y"


def age(obj: Obj, now: datetime) -> str:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return human_duration((now - created).total_seconds())


def selector_text(selector: Obj | None) -> str:
    """``metav1.FormatLabelSelector``: ``app=web,tier in (a,b)``; ``<none>`` when empty."""
    if not selector:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, values = expr["operator"], ",".join(expr.get("values") or [])
        parts.append({"In": f"{expr['key']} in ({values})",
                      "NotIn": f"{expr['key']} notin ({values})", "Exists": expr["key"],
                      "DoesNotExist": f"!{expr['key']}"}.get(op, expr["key"]))
    return ",".join(parts) or NONE


def _containers(template: Obj) -> tuple[str, str]:
    containers = ((template.get("spec") or {}).get("containers")) or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


NAME: Column = ("Name", "string", 0)
AGE: Column = ("Age", "string", 0)
WIDE_TEMPLATE: tuple[Column, ...] = (("Containers", "string", 1), ("Images", "string", 1))


def _deployment(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    names, images = _containers(spec.get("template") or {})
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(obj, now),
            names, images, selector_text(spec.get("selector"))]


def _replica_set(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    names, images = _containers(spec.get("template") or {})
    return [spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0),
            age(obj, now), names, images, selector_text(spec.get("selector"))]


def _stateful_set(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    names, images = _containers(spec.get("template") or {})
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", age(obj, now),
            names, images]


def _daemon_set(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    names, images = _containers(spec.get("template") or {})
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0),
            status.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE,
            age(obj, now), names, images, selector_text(spec.get("selector"))]


def _pod_status(obj: Obj) -> str:
    status = _status(obj)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated.get("reason"):
            reason = terminated["reason"]
    return str(reason)


def _pod(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    gates = spec.get("readinessGates") or []
    return [f"{ready}/{len(spec.get('containers') or [])}", _pod_status(obj), str(restarts),
            age(obj, now), status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, f"0/{len(gates)}" if gates else NONE]


def _service(obj: Obj, now: datetime) -> list[Any]:
    spec = _spec(obj)
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" if not p.get("nodePort")
                     else f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or []) or NONE
    external = ",".join(spec.get("externalIPs") or []) or NONE
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP") or NONE, external, ports,
            age(obj, now), selector or NONE]


def _hpa_targets(spec: Obj, status: Obj) -> str:
    """``cpu: 40%/80%`` per resource-utilization metric, ``<unknown>`` before a measurement."""
    current = status.get("currentMetrics") or []
    out = []
    for index, metric in enumerate(spec.get("metrics") or []):
        resource = metric.get("resource") or {}
        target = (resource.get("target") or {}).get("averageUtilization")
        if metric.get("type") != "Resource" or target is None:
            out.append("<unknown>")
            continue
        seen = ((current[index].get("resource") or {}).get("current") or {}).get(
            "averageUtilization") if index < len(current) else None
        out.append(f"{resource.get('name')}: {'<unknown>' if seen is None else f'{seen}%'}"
                   f"/{target}%")
    return ", ".join(out) or NONE


def _hpa(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    ref = spec.get("scaleTargetRef") or {}
    return [f"{ref.get('kind')}/{ref.get('name')}", _hpa_targets(spec, status),
            spec.get("minReplicas", 1),
            spec.get("maxReplicas"), status.get("currentReplicas", 0), age(obj, now)]


def _controller_revision(obj: Obj, now: datetime) -> list[Any]:
    owner = next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")),
                 None)
    group = str(owner.get("apiVersion", "")).split("/")[0] if owner else ""
    controller = f"{owner['kind'].lower()}.{group}/{owner['name']}" if owner else NONE
    return [controller, obj.get("revision", 0), age(obj, now)]


def _since(stamp: Any, now: datetime) -> str:
    return age({"metadata": {"creationTimestamp": stamp}}, now) if stamp else "<unknown>"


def _event(obj: Obj, now: datetime) -> list[Any]:
    """printEvent: last seen, type, reason, kind/name, (subobject, source), message, (first
    seen, count, name); no leading Name column."""
    first = _since(obj.get("firstTimestamp") or obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 1
    if obj.get("series"):
        last, count = _since(obj["series"].get("lastObservedTime"), now), obj["series"].get("count", count)
    involved, source = obj.get("involvedObject") or {}, obj.get("source") or {}
    where = (source.get("component", "") + (f", {source['host']}" if source.get("host") else "")) \
        if source.get("component") else ", ".join(x for x in (obj.get("reportingComponent"),
                                                            obj.get("reportingInstance")) if x)
    return [last, obj.get("type", ""), obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            where, str(obj.get("message", "")).strip(), first, count, obj["metadata"]["name"]]


UNNAMED = frozenset({"Event"})  # kinds whose table has no leading Name column


def _count(key: str) -> Row:
    return lambda obj, now: [len(obj.get(key) or {}), age(obj, now)]


PRINTERS: dict[str, tuple[tuple[Column, ...], Row]] = {
    "Deployment": ((("Ready", "string", 0), ("Up-to-date", "string", 0),
                    ("Available", "string", 0), AGE, *WIDE_TEMPLATE, ("Selector", "string", 1)),
                   _deployment),
    "ReplicaSet": ((("Desired", "integer", 0), ("Current", "integer", 0),
                    ("Ready", "integer", 0), AGE, *WIDE_TEMPLATE, ("Selector", "string", 1)),
                   _replica_set),
    "StatefulSet": ((("Ready", "string", 0), AGE, *WIDE_TEMPLATE), _stateful_set),
    "DaemonSet": ((("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                   ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                   ("Node Selector", "string", 0), AGE, *WIDE_TEMPLATE,
                   ("Selector", "string", 1)), _daemon_set),
    "Pod": ((("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), AGE,
             ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
             ("Readiness Gates", "string", 1)), _pod),
    "Service": ((("Type", "string", 0), ("Cluster-IP", "string", 0),
                 ("External-IP", "string", 0), ("Port(s)", "string", 0), AGE,
                 ("Selector", "string", 1)), _service),
    "HorizontalPodAutoscaler": ((("Reference", "string", 0), ("Targets", "string", 0),
                                 ("MinPods", "string", 0), ("MaxPods", "string", 0),
                                 ("Replicas", "string", 0), AGE), _hpa),
    "ConfigMap": ((("Data", "integer", 0), AGE), _count("data")),
    "Secret": ((("Type", "string", 0), ("Data", "integer", 0), AGE),
               lambda o, now: [o.get("type", "Opaque"), len(o.get("data") or {}), age(o, now)]),
    "Namespace": ((("Status", "string", 0), AGE),
                  lambda o, now: [_status(o).get("phase", "Active"), age(o, now)]),
    "ServiceAccount": ((("Secrets", "integer", 0), AGE), _count("secrets")),
    "ControllerRevision": ((("Controller", "string", 0), ("Revision", "integer", 0), AGE),
                           _controller_revision),
    "Event": ((("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
               ("Object", "string", 0), ("Subobject", "string", 1), ("Source", "string", 1),
               ("Message", "string", 0), ("First Seen", "string", 1), ("Count", "string", 1),
               ("Name", "string", 1)), _event),
    "Lease": ((("Holder", "string", 0), AGE),
              lambda o, now: [_spec(o).get("holderIdentity", ""), age(o, now)]),
}


def now_utc() -> datetime:
    return datetime.now(UTC)
