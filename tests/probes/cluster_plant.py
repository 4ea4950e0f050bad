"""Planting helpers for the faults of cluster_cases.py: the workload's spec, its status, events
as the controllers write them, pods Pending or waiting, a ReplicaSet that could create none."""

from __future__ import annotations

from typing import Any

from tests.probes.cluster_cases import NS, T1, _meta

JSON = dict[str, Any]


def deployment(c: dict[str, list[JSON]]) -> JSON:
    return c["deployments"][0]


def container(c: dict[str, list[JSON]]) -> JSON:
    return deployment(c)["spec"]["template"]["spec"]["containers"][0]


def unavailable(c: dict[str, list[JSON]], available: int = 0) -> None:
    deployment(c)["status"].update(availableReplicas=available, readyReplicas=available)


def event(
    c: dict[str, list[JSON]],
    kind: str,
    name: str,
    reason: str,
    message: str,
    type_: str = "Warning",
    ns: str = NS,
    count: int = 5,
) -> None:
    c["events"].append(
        {
            "kind": "Event",
            "metadata": _meta(f"{name}.{len(c['events'])}", ns),
            "involvedObject": {"kind": kind, "name": name, "namespace": ns},
            "reason": reason,
            "message": message,
            "type": type_,
            "count": count,
            "lastTimestamp": T1,
        }
    )


def pending(c: dict[str, list[JSON]], message: str | None, reason: str = "Unschedulable") -> None:
    """Both pods Pending: with the scheduler's verdict (PodScheduled=False) or none at all."""
    unavailable(c)
    for pod in c["pods"]:
        pod["spec"].pop("nodeName", None)
        pod["status"] = {
            "phase": "Pending",
            "conditions": []
            if message is None
            else [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message}],
        }
        if message is not None:
            event(c, "Pod", pod["metadata"]["name"], "FailedScheduling", message)


def waiting(
    c: dict[str, list[JSON]], reason: str, message: str, phase: str = "Pending", restarts: int = 0
) -> None:
    unavailable(c)
    for pod in c["pods"]:
        pod["status"]["phase"] = phase
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"},
        ]
        pod["status"]["containerStatuses"] = [
            {
                "name": "cart",
                "ready": False,
                "restartCount": restarts,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ]


def no_pods(c: dict[str, list[JSON]]) -> None:
    """The ReplicaSet could not create any pod."""
    c["pods"] = []
    unavailable(c)
    deployment(c)["status"]["replicas"] = 0
