"""The REST verbs (create, get, list, update, patch, delete, deletecollection) and subresources.

Objects are stored in their hub version and converted to the requested one on the way out.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

from tests.kubeapi import errors
from tests.kubeapi.controller import DEPLOYMENTS, DeploymentController
from tests.kubeapi.conversion import convert, hpa_defaults
from tests.kubeapi.defaults import apply_defaults
from tests.kubeapi.errors import bad_request
from tests.kubeapi.logs import PodLogs
from tests.kubeapi.meta import (
    bind_namespace,
    check_type_meta,
    merge_update,
    reset_status,
    stamp_new,
    unchanged,
)
from tests.kubeapi.patch import apply_patch
from tests.kubeapi.resources import Registry, ResourceType
from tests.kubeapi.revisions import WORKLOADS, RevisionController
from tests.kubeapi.selectors import Matcher, field_matcher, label_matcher
from tests.kubeapi.server_apply import server_side_apply
from tests.kubeapi.store import Store
from tests.kubeapi.validation import validate_object

APPLY_PATCH = "application/apply-patch+yaml"
ROOT_CA = "kube-root-ca.crt"
FAKE_CA = "-----BEGIN CERTIFICATE-----\nfake apiserver CA\n-----END CERTIFICATE-----\n"

Obj = dict[str, Any]
FIELD_ALIASES = {"reportingController": "reportingComponent"} | {
    f"regarding.{f}": f"involvedObject.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
}
RETURNS_OBJECT_ON_DELETE = ("Pod", "Namespace")


@dataclass
class Request:
    """One resource request after routing."""

    method: str
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str
    query: dict[str, str]
    body: bytes = b""
    content_type: str = "application/json"

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


class Api:
    """Executes routed requests against the store; returns (HTTP code, body)."""

    def __init__(self, registry: Registry, store: Store, logs: PodLogs) -> None:
        self.registry, self.store, self.logs = registry, store, logs
        replica_sets = registry.by_path("apps/v1", "replicasets")
        assert replica_sets is not None
        self.controller = DeploymentController(store, replica_sets)
        revisions = registry.by_path("apps/v1", "controllerrevisions")
        assert revisions is not None
        self.revisions = RevisionController(store, revisions)

    # -- helpers -----------------------------------------------------------------------------

    def render(self, obj: Obj, rt: ResourceType, in_list: bool = False) -> Obj:
        out = copy.deepcopy(convert(obj, rt.api_version))
        out["kind"] = rt.kind
        if in_list and not rt.custom:
            out.pop("apiVersion", None)
            out.pop("kind", None)
        return out

    def to_hub(self, obj: Obj, rt: ResourceType) -> Obj:
        hub = convert(obj, rt.hub_version)
        return hpa_defaults(hub) if rt.kind == "HorizontalPodAutoscaler" else hub

    @staticmethod
    def parse_body(req: Request) -> Obj:
        try:
            body = json.loads(req.body or b"{}")
        except ValueError as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("couldn't get version/kind; json parse error: expected an object")
        return body

    def existing(self, req: Request) -> Obj:
        obj = self.store.get(req.rt.storage, req.namespace or "", req.name or "")
        if obj is None:
            raise errors.not_found(req.rt, req.name or "")
        return obj

    def matcher(self, req: Request) -> Matcher:
        labels = label_matcher(req.query.get("labelSelector"))
        fields = field_matcher(req.query.get("fieldSelector"), req.rt.fields, FIELD_ALIASES)
        return lambda obj: labels(obj) and fields(obj)

    def require_namespace(self, namespace: str) -> None:
        if self.store.get(("", "namespaces"), "", namespace) is None:
            namespaces = self.registry.by_path("v1", "namespaces")
            assert namespaces is not None
            raise errors.not_found(namespaces, namespace)

    def after_write(self, rt: ResourceType, obj: Obj, subresource: str = "") -> None:
        if subresource == "status":
            return
        if rt.kind == "Namespace":
            self.publish_root_ca(obj["metadata"]["name"])
        if rt.storage == DEPLOYMENTS:
            self.controller.reconcile(obj["metadata"]["namespace"], obj["metadata"]["name"])
        elif rt.storage in WORKLOADS:
            self.revisions.reconcile(rt.storage, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def publish_root_ca(self, namespace: str) -> None:
        """kube-controller-manager's root-ca-cert-publisher: `kube-root-ca.crt` in every namespace."""
        configmaps = self.registry.by_path("v1", "configmaps")
        assert configmaps is not None
        if self.store.get(configmaps.storage, namespace, ROOT_CA) is None:
            obj = stamp_new({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": ROOT_CA, "namespace": namespace}, "data": {"ca.crt": FAKE_CA}}, configmaps)
            self.store.write(configmaps.storage, self.to_hub(obj, configmaps), "ADDED")

    # -- verbs -------------------------------------------------------------------------------

    def create(self, req: Request) -> tuple[int, Obj]:
        rt, obj = req.rt, self.parse_body(req)
        check_type_meta(obj, rt)
        bind_namespace(obj, rt, req.namespace)
        stamp_new(obj, rt)
        reset_status(obj, rt)
        apply_defaults(obj, rt)
        validate_object(obj, rt)
        meta = obj["metadata"]
        with self.store.cond:
            if rt.namespaced:
                self.require_namespace(meta["namespace"])
            if self.store.get(rt.storage, meta.get("namespace", ""), meta["name"]) is not None:
                raise errors.already_exists(rt, meta["name"])
            hub = self.to_hub(obj, rt)
            if req.dry_run:
                return 201, self.render(hub, rt)
            stored = self.store.write(rt.storage, hub, "ADDED")
            self.after_write(rt, stored)
        return 201, self.render(stored, rt)

    def get(self, req: Request) -> tuple[int, Obj]:
        return 200, self.render(self.existing(req), req.rt)

    def list_collection(self, req: Request) -> tuple[int, Obj]:
        matcher = self.matcher(req)
        with self.store.cond:
            items = [o for o in self.store.list_objects(req.rt.storage, req.namespace) if matcher(o)]
            list_rv = str(self.store.rv)
        meta: Obj = {"resourceVersion": list_rv}
        items = self._paginate(items, req.query, meta)
        return 200, {"kind": f"{req.rt.kind}List", "apiVersion": req.rt.api_version,
                     "metadata": meta, "items": [self.render(o, req.rt, True) for o in items]}

    @staticmethod
    def _paginate(items: list[Obj], query: dict[str, str], meta: Obj) -> list[Obj]:
        def key(obj: Obj) -> str:
            return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"

        if query.get("continue"):
            token = json.loads(base64.urlsafe_b64decode(query["continue"]))
            meta["resourceVersion"] = token["rv"]
            items = [o for o in items if key(o) > token["start"]]
        limit = int(query.get("limit") or 0)
        if limit and len(items) > limit:
            token = {"rv": meta["resourceVersion"], "start": key(items[limit - 1])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return items

    def update(self, req: Request, subresource: str = "") -> tuple[int, Obj]:
        body = self.parse_body(req)
        check_type_meta(body, req.rt)
        meta = body.setdefault("metadata", {})
        if meta.setdefault("name", req.name) != req.name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the "
                              f"name on the URL ({req.name})")
        bind_namespace(body, req.rt, req.namespace)
        with self.store.cond:
            return self.commit(req, self.existing(req), body, subresource)

    def commit(self, req: Request, old_hub: Obj, new: Obj, sub: str, patch: bool = False
               ) -> tuple[int, Obj]:
        """Check preconditions, merge, validate and store an update of ``old_hub``."""
        rt = req.rt
        old = self.render(old_hub, rt)
        self._precondition(rt, old, new, patch)
        merged = merge_update(old, new, rt, sub)
        apply_defaults(merged, rt)
        validate_object(merged, rt)
        hub = self.to_hub(merged, rt)
        if req.dry_run or unchanged(old_hub, hub):
            return 200, self.render(hub, rt)
        stored = self.store.write(rt.storage, hub, "MODIFIED")
        self.after_write(rt, stored, sub)
        return 200, self.render(stored, rt)

    @staticmethod
    def _precondition(rt: ResourceType, old: Obj, new: Obj, patch: bool) -> None:
        name = old["metadata"]["name"]
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        if not wanted and rt.custom and not patch:
            raise errors.invalid(rt, name, [{
                "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                "message": "Invalid value: 0x0: must be specified for an update"}])

    def patch(self, req: Request, subresource: str = "") -> tuple[int, Obj]:
        if req.content_type.split(";")[0].strip() == APPLY_PATCH:
            req = server_side_apply(self.store, req, subresource)
            if req.method == "POST":
                return self.create(req)
        with self.store.cond:
            old_hub = self.existing(req)
            current = self.render(old_hub, req.rt)
            patched = apply_patch(current, req.body, req.content_type, req.rt.kind,
                                  req.rt.custom)
            patched.setdefault("metadata", {})["name"] = req.name
            return self.commit(req, old_hub, patched, subresource, patch=True)

    # -- delete --------------------------------------------------------------------------------

    def delete(self, req: Request) -> tuple[int, Obj]:
        options = self.parse_body(req)
        policy = req.query.get("propagationPolicy") or options.get("propagationPolicy") or ""
        if policy not in ("", "Orphan", "Background", "Foreground"):
            raise bad_request(f"propagationPolicy: Unsupported value: {policy!r}")
        with self.store.cond:
            old = self.existing(req)
            self._delete_preconditions(req.rt, old, options.get("preconditions") or {})
            if req.dry_run:
                return 200, self._deleted_body(req.rt, old)
            gone = self._remove(req.rt, old, policy)
        return 200, self._deleted_body(req.rt, gone)

    def _delete_preconditions(self, rt: ResourceType, old: Obj, pre: Obj) -> None:
        meta = old["metadata"]
        for field, label, why in (("uid", "UID", "deleted and then recreated"),
                                  ("resourceVersion", "ResourceVersion", "modified")):
            if pre.get(field) and pre[field] != meta[field]:
                raise errors.ApiError(409, (
                    f'Operation cannot be fulfilled on {rt.kind} "{meta["name"]}": the {label} in the '
                    f"precondition ({pre[field]}) does not match the {label} in record ({meta[field]}). "
                    f"The object might have been {why}"), "Conflict", errors.details(rt, meta["name"]))

    def _remove(self, rt: ResourceType, obj: Obj, policy: str) -> Obj:
        meta = obj["metadata"]
        gone = self.store.remove(rt.storage, meta.get("namespace", ""), meta["name"])
        assert gone is not None
        self._collect_garbage(meta["uid"], policy)
        if rt.kind == "Namespace":
            for storage in list(self.store.objects):
                for child in self.store.list_objects(storage, meta["name"]):
                    self.store.remove(storage, meta["name"], child["metadata"]["name"])
        return gone

    def _collect_garbage(self, owner_uid: str, policy: str) -> None:
        """Background/Foreground delete dependents at once; Orphan drops their ownerRefs."""
        for storage in list(self.store.objects):
            dependants = self.registry.by_storage(storage)
            for child in self.store.list_objects(storage):
                refs = child["metadata"].get("ownerReferences") or []
                if not dependants or not any(r.get("uid") == owner_uid for r in refs):
                    continue
                if policy == "Orphan":
                    child["metadata"]["ownerReferences"] = [
                        r for r in refs if r.get("uid") != owner_uid]
                    self.store.write(storage, child, "MODIFIED")
                else:
                    self._remove(dependants[0], child, policy)

    def _deleted_body(self, rt: ResourceType, obj: Obj) -> Obj:
        if rt.kind in RETURNS_OBJECT_ON_DELETE:  # custom resources answer a Status, as on a cluster
            out = self.render(obj, rt)
            if rt.kind == "Namespace":
                out["status"] = {"phase": "Terminating"}
            return out
        details: Obj = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details.update(kind=rt.plural, uid=obj["metadata"]["uid"])
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    def delete_collection(self, req: Request) -> tuple[int, Obj]:
        options = self.parse_body(req)
        policy = req.query.get("propagationPolicy") or options.get("propagationPolicy") or ""
        matcher = self.matcher(req)
        with self.store.cond:
            doomed = [o for o in self.store.list_objects(req.rt.storage, req.namespace) if matcher(o)]
            gone = doomed if req.dry_run else [self._remove(req.rt, o, policy) for o in doomed]
            list_rv = str(self.store.rv)
        return 200, {"kind": f"{req.rt.kind}List", "apiVersion": req.rt.api_version,
                     "metadata": {"resourceVersion": list_rv},
                     "items": [self.render(o, req.rt, True) for o in gone]}

    # -- subresources --------------------------------------------------------------------------

    def pod_log(self, req: Request) -> tuple[int, str]:
        return 200, self.logs.read(self.existing(req), req.query)



