"""PATCH bodies: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386), strategic merge patch.

Strategic merge knows the merge keys of the core types by field name (with the Service port
exception) and the ``$patch: delete|replace|merge`` directives and ``$deleteFromPrimitiveList``;
``$setElementOrder`` and ``$retainKeys`` are accepted and dropped (order is not enforced).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.kubeapi.errors import ApiError, bad_request, unsupported_patch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "ports": "containerPort", "volumes": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "conditions": "type",
    "ownerReferences": "uid", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "taints": "key", "addresses": "type",
}
PRIMITIVE_MERGE_LISTS = {"finalizers"}


def _rejected(message: str) -> ApiError:
    """How the apiserver reports a JSON patch that cannot be applied (422)."""
    return ApiError(
        422,
        "the server rejected our request due to an error in our request",
        "Invalid",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _rejected(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        doc = _child(doc, part, path)
    return doc


def _child(container: Any, part: str, path: str) -> Any:
    if isinstance(container, dict) and part in container:
        return container[part]
    if isinstance(container, list) and part.isdigit() and int(part) < len(container):
        return container[int(part)]
    raise _rejected(f"doc is missing path: {path!r}: missing value")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and (last == "-" or (last.isdigit() and int(last) <= len(
            parent))):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        raise _rejected(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    parent = _walk(doc, parts[:-1], path)
    value = _child(parent, parts[-1], path)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return doc, value


def _json_patch_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op.get("op"), op.get("path", "")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, path)[0]
    if kind == "replace":
        _walk(doc, _pointer(path), path)
        return _add(_remove(doc, path)[0] if path else doc, path, copy.deepcopy(op["value"]))
    if kind == "test":
        if _walk(doc, _pointer(path), path) != op.get("value"):
            raise _rejected(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        source = op["from"]
        value = _walk(doc, _pointer(source), source)
        if kind == "move":
            doc = _remove(doc, source)[0]
        return _add(doc, path, copy.deepcopy(value))
    raise _rejected(f"Unexpected kind: {kind}")


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result: Any = copy.deepcopy(doc)
    for op in ops:
        try:
            result = _json_patch_op(result, op)
        except KeyError as exc:
            raise _rejected(f"missing {exc.args[0]!r} in operation") from exc
    if not isinstance(result, dict):
        raise _rejected("patch result is not an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, path: tuple[str, ...], kind: str) -> str | None:
    if field == "ports" and kind == "Service" and path[-1:] == ("spec",):
        return "port"
    return MERGE_KEYS.get(field)


def strategic_merge(
    target: Any, patch: Any, kind: str, path: tuple[str, ...] = ()
) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_field(result.get(key), value, key, kind, path)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return _primitive_deletions(result, patch)


def _merge_field(current: Any, value: Any, key: str, kind: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, list):
        merge_key = _merge_key(key, path, kind)
        if merge_key is not None:
            return _merge_list(current if isinstance(current, list) else [], value, merge_key,
                               kind, (*path, key))
        if key in PRIMITIVE_MERGE_LISTS:
            base = current if isinstance(current, list) else []
            return base + [v for v in value if v not in base]
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return strategic_merge(current, value, kind, (*path, key))
    return copy.deepcopy(value)


def _merge_list(
    current: list[Any], patch: list[Any], merge_key: str, kind: str, path: tuple[str, ...]
) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if not (
            isinstance(i, dict) and i.get("$patch") == "replace")]
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        index = next((i for i, old in enumerate(result)
                      if isinstance(old, dict) and old.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            result = [old for old in result if not (
                isinstance(old, dict) and old.get(merge_key) == item[merge_key])]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge(result[index], item, kind, path)
    return _patch_order(result, current, patch, merge_key)


def _patch_order(result: list[Any], current: list[Any], patch: list[Any], key: str) -> list[Any]:
    """apimachinery's mergeSortedSlice (no $setElementOrder): the patch's items in its order, then
    the server-only ones; of two items both on the server, the server's order decides."""
    def where(items: list[Any], item: Any) -> int:
        return next((i for i, x in enumerate(items) if isinstance(x, dict) and x.get(key) == item.get(key)), -1)
    patched = [r for r in result if where(patch, r) >= 0]
    patched.sort(key=lambda r: where(patch, r))
    server_only = [r for r in result if where(patch, r) < 0]
    merged: list[Any] = []
    while patched or server_only:
        if not server_only or (patched and not (where(current, patched[0]) >= 0
                                                and where(current, server_only[0]) < where(current, patched[0]))):
            merged.append(patched.pop(0))
        else:
            merged.append(server_only.pop(0))
    return merged


def _primitive_deletions(result: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/") and isinstance(value, list):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def apply_patch(
    doc: dict[str, Any], body: bytes, content_type: str, kind: str, custom: bool
) -> dict[str, Any]:
    """Apply a PATCH body of the given content type to ``doc`` and return the result."""
    media = content_type.split(";")[0].strip()
    if media not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH) or (
            custom and media == STRATEGIC_PATCH):
        raise unsupported_patch(media)
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    if media == JSON_PATCH:
        return json_patch(doc, patch)
    if not isinstance(patch, dict):
        raise bad_request("cannot unmarshal patch: expected a JSON object")
    if media == MERGE_PATCH:
        result: dict[str, Any] = merge_patch(doc, patch)
        return result
    merged: dict[str, Any] = strategic_merge(doc, patch, kind)
    return merged
