"""Conversion between served versions that share storage.

Core ``v1`` Events are stored and converted to/from ``events.k8s.io/v1``; HPAs are stored as
``autoscaling/v2`` and converted to/from ``autoscaling/v1`` (only the CPU-utilization target
survives in v1, as in the real conversion minus its annotation round-tripping).
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
EVENT_RENAMES = {
    "involvedObject": "regarding", "related": "related", "message": "note",
    "reportingComponent": "reportingController", "reportingInstance": "reportingInstance",
    "source": "deprecatedSource", "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp", "count": "deprecatedCount",
    "eventTime": "eventTime", "series": "series", "action": "action", "reason": "reason",
    "type": "type",
}


def _rename(obj: Obj, renames: dict[str, str], api_version: str) -> Obj:
    out: Obj = {"apiVersion": api_version, "kind": obj.get("kind", "Event"),
                "metadata": copy.deepcopy(obj.get("metadata", {}))}
    for old, new in renames.items():
        if old in obj:
            out[new] = copy.deepcopy(obj[old])
    return out


def event_to_core(obj: Obj) -> Obj:
    core = _rename(obj, {v: k for k, v in EVENT_RENAMES.items()}, "v1")
    if "reportingComponent" in core and "source" not in core:
        core["source"] = {"component": core["reportingComponent"]}
    return core


def event_to_new(obj: Obj) -> Obj:
    new = _rename(obj, EVENT_RENAMES, "events.k8s.io/v1")
    if "reportingController" not in new and (obj.get("source") or {}).get("component"):
        new["reportingController"] = obj["source"]["component"]
    return new


def _cpu_target(percent: int) -> Obj:
    return {"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}


def hpa_to_v2(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.setdefault("spec", {})
    percent = spec.pop("targetCPUUtilizationPercentage", None)
    if percent is not None:
        spec["metrics"] = [_cpu_target(percent)]
    status = out.get("status")
    if isinstance(status, dict) and "currentCPUUtilizationPercentage" in status:
        current = status.pop("currentCPUUtilizationPercentage")
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    return out


def hpa_to_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.setdefault("spec", {})
    for metric in spec.pop("metrics", None) or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu" and "averageUtilization" in resource.get("target", {}):
            spec["targetCPUUtilizationPercentage"] = resource["target"]["averageUtilization"]
    spec.pop("behavior", None)
    status = out.get("status")
    if isinstance(status, dict):
        status.pop("conditions", None)
        for metric in status.pop("currentMetrics", None) or []:
            current = (metric.get("resource") or {}).get("current") or {}
            if "averageUtilization" in current:
                status["currentCPUUtilizationPercentage"] = current["averageUtilization"]
    return out


def hpa_defaults(obj: Obj) -> Obj:
    """``autoscaling/v2`` defaulting: one replica minimum and an 80% CPU target."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [_cpu_target(80)]
    return obj


CONVERTERS = {
    ("v1", "events.k8s.io/v1"): event_to_new,
    ("events.k8s.io/v1", "v1"): event_to_core,
    ("autoscaling/v2", "autoscaling/v1"): hpa_to_v1,
    ("autoscaling/v1", "autoscaling/v2"): hpa_to_v2,
}


def convert(obj: Obj, to_api_version: str) -> Obj:
    """Convert a stored object to another served version of the same resource."""
    source = str(obj.get("apiVersion", ""))
    if source == to_api_version:
        return obj
    converter = CONVERTERS.get((source, to_api_version))
    if converter is None:
        out = copy.deepcopy(obj)
        out["apiVersion"] = to_api_version
        return out
    return converter(obj)
