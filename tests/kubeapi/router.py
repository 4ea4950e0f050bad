"""URL routing: discovery documents and ``/api/v1/...`` / ``/apis/GROUP/VERSION/...`` paths."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi import errors, openapi, protobuf, scale, server_apply, tables, watch
from tests.kubeapi.api import Api, Request
from tests.kubeapi.resources import (
    Registry,
    api_versions_doc,
    group_doc,
    group_list_doc,
    resource_list_doc,
)
from tests.kubeapi.validation import SCHEMA_VERSION

# What a release build reports (no suffix), at the minor the schemas are from: kubectl warns
# when its minor is more than one away, and the fetched kubectl is of this minor.
VERSION_INFO = {"major": SCHEMA_VERSION.split(".")[0], "minor": SCHEMA_VERSION.split(".")[1],
                "gitVersion": f"v{SCHEMA_VERSION}", "gitCommit": "0" * 40,
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"}
Handler = Callable[[Api, Request], tuple[int, Any]]


@dataclass
class Response:
    """What the HTTP layer writes: a JSON document, plain text, or a stream of watch events."""

    code: int
    body: Any = None
    stream: Iterator[dict[str, Any]] | None = None
    text_stream: Iterator[str] | None = None  # `logs -f`: plain text, chunked
    headers: dict[str, str] = field(default_factory=dict)


def _discovery(registry: Registry, parts: list[str], host: str) -> Any:
    if parts == ["api"]:
        return api_versions_doc(host)
    if parts == ["apis"]:
        return group_list_doc(registry)
    if parts == ["version"]:
        return VERSION_INFO
    if parts[:1] == ["openapi"]:
        return openapi.serve(registry, parts, SCHEMA_VERSION)
    if parts == ["api", "v1"]:
        return resource_list_doc(registry, "v1")
    if len(parts) == 2 and parts[0] == "apis":
        versions = registry.group_versions().get(parts[1])
        if versions:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1], versions)}
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list_doc(registry, f"{parts[1]}/{parts[2]}")
    return None


def _split(parts: list[str]) -> tuple[str, list[str]] | None:
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        return "v1", parts[2:]
    if len(parts) > 3 and parts[0] == "apis":
        return f"{parts[1]}/{parts[2]}", parts[3:]
    return None


def resolve(registry: Registry, method: str, parts: list[str], query: dict[str, str]
            ) -> Request:
    """Turn path segments into a ``Request``; 404 for anything the server does not serve."""
    split = _split(parts)
    if split is None:
        raise errors.not_found_path()
    api_version, rest = split
    namespace = None
    nested = registry.by_path(api_version, rest[2]) if len(rest) >= 3 else None
    if rest[0] == "namespaces" and nested is not None and nested.namespaced:
        namespace, rest = rest[1], rest[2:]
    rt = registry.by_path(api_version, rest[0])
    if rt is None or len(rest) > 3 or (rt.namespaced and namespace is None and len(rest) > 1):
        raise errors.not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        raise errors.not_found_path()
    return Request(method, rt, namespace, name, sub, query)


def _collection(req: Request) -> Handler:
    if req.method == "GET":
        return Api.list_collection
    if req.method == "POST":
        return Api.create
    if req.method == "DELETE":
        return Api.delete_collection
    raise errors.method_not_allowed(req.method, req.rt)


ITEM: dict[tuple[str, str], Handler] = {
    ("", "GET"): Api.get, ("", "PUT"): Api.update, ("", "PATCH"): Api.patch,
    ("", "DELETE"): Api.delete,
    ("status", "GET"): Api.get,
    ("status", "PUT"): lambda api, req: api.update(req, "status"),
    ("status", "PATCH"): lambda api, req: api.patch(req, "status"),
    ("scale", "GET"): scale.get_scale, ("scale", "PUT"): scale.put_scale,
    ("scale", "PATCH"): scale.patch_scale,
    ("log", "GET"): Api.pod_log,
}


def _as_table(req: Request, body: Any) -> Any:
    """A list or a single object as the Table ``kubectl get`` asks for."""
    if "items" in body:
        meta = body["metadata"]
        return tables.to_table(req.rt, body["items"], meta, req.query)
    meta = {"resourceVersion": body["metadata"].get("resourceVersion", "")}
    return tables.to_table(req.rt, [body], meta, req.query)


def _table_events(req: Request, events: Iterator[Any]) -> Iterator[Any]:
    """`kubectl get -w`: each watched object as a one-row Table; the column definitions come with
    the first event only, as the apiserver sends them (NoHeaders after the first)."""
    first = True
    for event in events:
        obj = event.get("object") or {}
        if event.get("type") in ("ERROR", "BOOKMARK") or obj.get("kind") == "Status":
            yield event
            continue
        table = tables.to_table(req.rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                req.query)
        if not first:
            table["columnDefinitions"] = []
        first = False
        yield {"type": event["type"], "object": table}


def handle(api: Api, req: Request, accept: str = "") -> Response:
    if req.rt.read_only and req.method != "GET":
        raise errors.method_not_allowed(req.method, req.rt)
    table = req.method == "GET" and req.subresource == "" and tables.wants_table(accept)
    if req.name is None:
        if req.method == "GET" and req.query.get("watch") in ("true", "1"):
            events = watch.stream(api, req)
            return Response(200, stream=_table_events(req, events) if table else events)
        code, body = _collection(req)(api, req)
        return Response(code, _as_table(req, body) if table else body)
    if req.subresource == "log" and req.method == "GET" and req.query.get("follow") in ("true", "1"):
        return Response(200, text_stream=server_apply.follow_log(api, req))
    handler = ITEM.get((req.subresource, req.method))
    if handler is None:
        raise errors.method_not_allowed(req.method, req.rt)
    code, body = handler(api, req)
    return Response(code, _as_table(req, body) if table else body)


def route(api: Api, method: str, path: str, query: dict[str, str], body: bytes,
          content_type: str, host: str, accept: str = "") -> Response:
    parts = [p for p in path.split("/") if p]
    if parts in (["healthz"], ["livez"], ["readyz"]):
        return Response(200, "ok")
    if method == "GET":
        doc = _discovery(api.registry, parts, host)
        if doc is not None:
            return Response(200, doc)
    if method in ("POST", "PUT") and body and errors.is_protobuf(content_type):
        body, content_type = json.dumps(protobuf.decode(body)).encode(), "application/json"
    req = resolve(api.registry, method, parts, query)
    req.body, req.content_type = body, content_type
    return handle(api, req, accept)


