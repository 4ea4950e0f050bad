"""``/openapi/v3`` (and a JSON ``/openapi/v2``) generated from the schemas the fake validates with.

kubectl needs these before ``apply``: it reads ``/openapi/v3`` (a discovery document naming one
document per group-version), checks that the PATCH operation of the object's kind takes the
``fieldValidation`` query parameter (then validation happens on the server, here), and builds
its strategic merge patch from the schema's ``x-kubernetes-patch-*`` extensions. The schemas
are ``kubernetes_validate``'s JSON-schema rendering of the apiserver's own OpenAPI, turned back
into OpenAPI 3.0 (``#/components/schemas`` refs, ``allOf`` around refs with siblings, no
``null`` types). Custom resources get a permissive schema, like a CRD with
``x-kubernetes-preserve-unknown-fields``. ``/openapi/v2`` is served as JSON only: the real
server also speaks protobuf there, which kubectl asks for only when v3 is missing.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from kubernetes_validate import utils as kv_utils

from tests.kubeapi.resources import Registry, ResourceType

Obj = dict[str, Any]
DEFS_PREFIX = "#/$defs/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


@functools.cache
def definitions(schema_version: str) -> Obj:
    """The apiserver's definitions, by name, as OpenAPI 3.0 schemas."""
    folder = f"kubernetes-json-schema/v{schema_version}-local"
    raw = kv_utils.schema_contents(f"{folder}/_definitions.json", schema_version)["$defs"]
    converted = {name: _schema(body, "#/components/schemas/") for name, body in raw.items()}
    converted[INT_OR_STRING] = {"type": "string", "format": "int-or-string",
                                "x-kubernetes-int-or-string": True}
    converted[QUANTITY] = {"type": "string", "x-kubernetes-int-or-string": True}
    return converted


def _schema(node: Any, prefix: str) -> Any:
    """One JSON-schema node as OpenAPI: refs re-rooted, nullable type lists collapsed."""
    if isinstance(node, list):
        return [_schema(n, prefix) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _schema(v, prefix) for k, v in node.items() if k != "$ref"}
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if types else "object"
    if "$ref" in node:
        ref = {"$ref": prefix + str(node["$ref"]).removeprefix(DEFS_PREFIX)}
        return {"allOf": [ref], **out} if out else ref
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _closure(defs: Obj, roots: list[str]) -> Obj:
    """The named schemas and everything they reference, as a real group document holds."""
    wanted, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name not in defs:
            continue
        wanted.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(found - wanted)
    return {name: defs[name] for name in sorted(wanted)}


def _gvk(rt: ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _definition_name(defs: Obj, rt: ResourceType) -> str | None:
    for name, body in defs.items():
        if _gvk(rt) in (body.get("x-kubernetes-group-version-kind") or []):
            return name
    return None


def _operation(rt: ResourceType, action: str, params: tuple[str, ...]) -> Obj:
    return {"operationId": f"{action}{rt.kind}", "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": _gvk(rt),
            "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}}
                           for p in params],
            "responses": {"200": {"description": "OK"}}}


def _paths(rt: ResourceType) -> Obj:
    base = rt.path("{namespace}" if rt.namespaced else None)
    collection = {"get": _operation(rt, "list", ("labelSelector", "fieldSelector", "limit"))}
    item = {"get": _operation(rt, "get", ("pretty",))}
    if not rt.read_only:
        collection["post"] = _operation(rt, "post", WRITE_PARAMS)
        item.update(put=_operation(rt, "put", WRITE_PARAMS),
                    patch=_operation(rt, "patch", (*WRITE_PARAMS, "force")),
                    delete=_operation(rt, "delete", ("dryRun", "propagationPolicy")))
    return {base: collection, f"{base}/{{name}}": item}


def _custom_schema(rt: ResourceType) -> Obj:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [_gvk(rt)],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"allOf": [{"$ref": "#/components/schemas/"
                                                   "io.k8s.apimachinery.pkg.apis.meta.v1."
                                                   "ObjectMeta"}]}}}


def group_version_doc(registry: Registry, api_version: str, schema_version: str
                      ) -> Obj | None:
    """The OpenAPI 3.0 document of one group-version, or None if nothing is served there."""
    served = [rt for rt in registry.types if rt.api_version == api_version]
    if not served:
        return None
    defs = definitions(schema_version)
    roots = [n for rt in served if (n := _definition_name(defs, rt))]
    schemas = _closure(defs, [*roots, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"])
    paths: Obj = {}
    for rt in served:
        if rt.custom:
            schemas[f"{rt.group}.{rt.version}.{rt.kind}"] = _custom_schema(rt)
        paths.update(_paths(rt))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{schema_version}"},
            "paths": paths, "components": {"schemas": schemas}}


def _prefix(api_version: str) -> str:
    return "api/v1" if api_version == "v1" else f"apis/{api_version}"


def discovery_doc(registry: Registry) -> Obj:
    """``/openapi/v3``: where each group-version's document is, with a hash as the server gives."""
    paths: Obj = {}
    for api_version in sorted({rt.api_version for rt in registry.types}):
        prefix = _prefix(api_version)
        digest = hashlib.sha512(f"{prefix}:{len(registry.types)}".encode()).hexdigest()[:128]
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest.upper()}"}
    return {"paths": paths}


def v2_doc(registry: Registry, schema_version: str) -> Obj:
    """``/openapi/v2`` as JSON: every definition and path, Swagger 2.0 style refs."""
    folder = f"kubernetes-json-schema/v{schema_version}-local"
    raw = kv_utils.schema_contents(f"{folder}/_definitions.json", schema_version)["$defs"]
    definitions_v2 = {name: _schema(body, "#/definitions/") for name, body in raw.items()}
    paths: Obj = {}
    for rt in registry.types:
        paths.update(_paths(rt))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{schema_version}"},
            "paths": paths, "definitions": definitions_v2}


def serve(registry: Registry, parts: list[str], schema_version: str) -> Obj | None:
    """The document for ``/openapi/...`` path segments, or None (a 404)."""
    if parts == ["openapi", "v3"]:
        return discovery_doc(registry)
    if parts == ["openapi", "v2"]:
        return v2_doc(registry, schema_version)
    if parts[:2] != ["openapi", "v3"]:
        return None
    rest = parts[2:]
    if rest[:1] == ["api"] and len(rest) == 2:
        return group_version_doc(registry, rest[1], schema_version)
    if rest[:1] == ["apis"] and len(rest) == 3:
        return group_version_doc(registry, f"{rest[1]}/{rest[2]}", schema_version)
    return None
