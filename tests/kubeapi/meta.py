"""Server-managed metadata: uid, resourceVersion, timestamps, generation, generateName."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.kubeapi.errors import bad_request
from tests.kubeapi.resources import ResourceType

Obj = dict[str, Any]
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    return "".join(random.choice(NAME_ALPHABET) for _ in range(length))


def check_type_meta(obj: Obj, rt: ResourceType, kind: str | None = None) -> None:
    """Default ``apiVersion``/``kind`` from the URL; reject a body for another type."""
    obj.setdefault("apiVersion", rt.api_version)
    obj.setdefault("kind", kind or rt.kind)
    if obj["apiVersion"] != rt.api_version:
        raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not match "
                          f"the expected API version ({rt.api_version})")
    if obj["kind"] != (kind or rt.kind):
        raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected "
                          f"kind ({kind or rt.kind})")


def bind_namespace(obj: Obj, rt: ResourceType, namespace: str | None) -> None:
    meta = obj.setdefault("metadata", {})
    if not rt.namespaced:
        meta.pop("namespace", None)
        return
    if meta.get("namespace") and namespace and meta["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    meta["namespace"] = namespace or meta.get("namespace") or "default"


def stamp_new(obj: Obj, rt: ResourceType, keep: bool = False) -> Obj:
    """Fill what the server sets on create. ``keep`` preserves values a seed already has."""
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + random_suffix()
    for field, value in (("uid", str(uuid.uuid4())), ("creationTimestamp", now_rfc3339())):
        if not (keep and meta.get(field)):
            meta[field] = value
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(field, None)
    if rt.generation and not (keep and meta.get("generation")):
        meta["generation"] = 1
    elif not rt.generation:
        meta.pop("generation", None)
    return obj


def reset_status(obj: Obj, rt: ResourceType) -> None:
    """Create ignores a client-sent status on types with a status subresource."""
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending"}
    elif rt.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif rt.kind == "HorizontalPodAutoscaler":
        obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}
    elif "status" in rt.subresources:
        obj["status"] = {} if not rt.custom else None
        if obj["status"] is None:
            del obj["status"]


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def merge_update(old: Obj, new: Obj, rt: ResourceType, subresource: str) -> Obj:
    """The object a PUT (or PATCH result) would store, given the current one."""
    if subresource == "status":
        merged = copy.deepcopy(old)
        if "status" in new:
            merged["status"] = copy.deepcopy(new["status"])
        else:
            merged.pop("status", None)
        return merged
    merged = copy.deepcopy(new)
    meta, old_meta = merged.setdefault("metadata", {}), old["metadata"]
    for field in ("uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp"):
        if field in old_meta:
            meta[field] = old_meta[field]
    if "status" in rt.subresources:
        if "status" in old:
            merged["status"] = copy.deepcopy(old["status"])
        else:
            merged.pop("status", None)
    if rt.generation and _spec_part(merged) != _spec_part(old):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    return merged


def unchanged(old: Obj, new: Obj) -> bool:
    """A write that changes nothing is not persisted and keeps the resourceVersion."""
    strip = [copy.deepcopy(o) for o in (old, new)]
    for obj in strip:
        obj.get("metadata", {}).pop("resourceVersion", None)
    return strip[0] == strip[1]
