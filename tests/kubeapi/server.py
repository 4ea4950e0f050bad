"""``FakeApiServer``: a stateful stand-in for kube-apiserver, driven by the official client.

Usage::

    server = FakeApiServer()
    server.start()                      # http://127.0.0.1:PORT
    api = kubernetes.client.ApiClient(server.client_configuration())
    ...
    server.stop()
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import Any

import kubernetes.client

from tests.kubeapi import errors
from tests.kubeapi.api import Api, Request
from tests.kubeapi.auth import AUTH_DELEGATOR, Auth
from tests.kubeapi.controller import DEPLOYMENTS, template_hash
from tests.kubeapi.defaults import apply_defaults
from tests.kubeapi.handler import KubeHTTPServer
from tests.kubeapi.logs import PodLogs
from tests.kubeapi.meta import bind_namespace, reset_status, stamp_new, unchanged
from tests.kubeapi.resources import Registry, ResourceType
from tests.kubeapi.revisions import WORKLOADS
from tests.kubeapi.router import Response, route
from tests.kubeapi.store import Store

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Fault:
    """A queued injected failure for requests matching ``method`` and ``path_prefix``."""

    method: str
    path_prefix: str
    status: int
    count: int
    reason: str


class FakeApiServer:
    """An in-process kube-apiserver fake on loopback; see docs/testing-kubernetes.md."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.store = Store()
        self.logs = PodLogs()
        self.api = Api(self.registry, self.store, self.logs)
        self.auth = Auth(self.registry, self.store)  # tokens, RBAC and the review APIs
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._faults: list[Fault] = []
        self._hangs: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: KubeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name in INITIAL_NAMESPACES:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.seed(AUTH_DELEGATOR)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        self._httpd = KubeHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
            name="fake-kube-apiserver", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._stopping.set()
        self.store.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def client_configuration(self) -> kubernetes.client.Configuration:
        configuration = kubernetes.client.Configuration(host=self.url)
        configuration.verify_ssl = False
        return configuration

    # -- state -------------------------------------------------------------------------------

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as a create would (uid, resourceVersion, ... filled unless given).

        A seeded Deployment without ``status`` is then rolled out by the controller-lite.
        """
        rt = self._type_of(obj)
        obj = copy.deepcopy(obj)
        bind_namespace(obj, rt, obj.get("metadata", {}).get("namespace"))
        stamp_new(obj, rt, keep=True)
        apply_defaults(obj, rt)
        if "status" not in obj and rt.kind == "Namespace":
            reset_status(obj, rt)
        with self.store.cond:
            meta = obj["metadata"]
            exists = self.store.get(rt.storage, meta.get("namespace", ""), meta["name"])
            stored = self.store.write(rt.storage, self.api.to_hub(obj, rt),
                                      "MODIFIED" if exists else "ADDED")
            if rt.kind == "Namespace":
                self.api.publish_root_ca(meta["name"])
            if rt.storage in (DEPLOYMENTS, *WORKLOADS) and "status" not in obj:
                self.api.after_write(rt, stored)
                stored = self.store.get(rt.storage, meta["namespace"], meta["name"]) or stored
        return self.api.render(stored, rt)

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        rt = self.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        if rt is None:
            raise ValueError(f"fake apiserver does not serve {obj.get('apiVersion')}/"
                             f"{obj.get('kind')}; register_custom_resource() it first")
        return rt

    def get_object(self, api_version: str, kind_plural: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        rt = self.registry.by_path(api_version, kind_plural)
        if rt is None:
            raise ValueError(f"fake apiserver does not serve {api_version}/{kind_plural}")
        obj = self.store.get(rt.storage, namespace or "" if rt.namespaced else "", name)
        return None if obj is None else self.api.render(obj, rt)

    def register_custom_resource(self, group: str, version: str, plural: str, kind: str,
                                 namespaced: bool = True,
                                 printer_columns: tuple[tuple[str, str, str], ...] = (),
                                 short_names: tuple[str, ...] = ()) -> None:
        """Serve a custom resource (with a ``status`` subresource), as an established CRD;
        ``printer_columns`` are its additionalPrinterColumns: (name, type, ``.json.path``)."""
        self.registry.add(ResourceType(group, version, plural, kind, namespaced, ("status",),
                                       generation=True, custom=True, short_names=short_names,
                                       printer_columns=printer_columns))

    def list_objects(self, group: str, version: str, plural: str,
                     namespace: str | None = None) -> list[dict[str, Any]]:
        """Every stored object of a type (in ``namespace``, or all), as served."""
        rt = self.registry.by_path(f"{group}/{version}" if group else version, plural)
        if rt is None:
            return []
        return [self.api.render(o, rt) for o in self.store.list_objects(rt.storage, namespace)]

    def apply(self, obj: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        """Create ``obj``, or replace its spec, labels and annotations as a client-side apply
        would (through validation, defaulting and the controller); ``keep=("spec.replicas",)``
        leaves the live replica count alone."""
        rt = self._type_of(obj)
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        current = self.get_object(rt.api_version, rt.plural, namespace, meta["name"])
        if current is None:
            return self.api.create(self._request("POST", rt, namespace, None, obj))[1]
        merged = copy.deepcopy(current)
        merged["spec"] = copy.deepcopy(obj.get("spec"))
        for field in ("labels", "annotations"):
            merged["metadata"].setdefault(field, {}).update(meta.get(field) or {})
        if "spec.replicas" in keep and "replicas" in current.get("spec", {}):
            merged["spec"]["replicas"] = current["spec"]["replicas"]
        return self.api.update(self._request("PUT", rt, namespace, meta["name"], merged))[1]

    def put_custom(self, obj: dict[str, Any]) -> bool:
        """Store a custom resource whole (spec and status) if nobody wrote it since it was read
        (its resourceVersion still matches); False when it changed meanwhile or is unchanged."""
        rt = self._type_of(obj)
        meta = obj["metadata"]
        with self.store.cond:
            current = self.store.get(rt.storage, meta.get("namespace", ""), meta["name"])
            if current is None or current["metadata"]["resourceVersion"] != meta["resourceVersion"]:
                return False
            if unchanged(current, obj):
                return False
            self.store.write(rt.storage, copy.deepcopy(obj), "MODIFIED")
        return True

    @staticmethod
    def _request(method: str, rt: ResourceType, namespace: str, name: str | None,
                 body: dict[str, Any]) -> Request:
        return Request(method, rt, namespace, name, "", {}, json.dumps(body).encode())

    def set_pod_log(self, namespace: str, pod: str, container: str, text: str,
                    previous: bool = False, timestamps: list[datetime] | None = None) -> None:
        """Set a container's log; one timestamp per line (default: now)."""
        self.logs.set((namespace, pod, container, previous), text, timestamps)

    def set_deployment_unavailable(self, namespace: str, name: str, available: int) -> None:
        """Pretend only ``available`` replicas of the current template become available."""
        deploy = self.store.get(DEPLOYMENTS, namespace, name)
        if deploy is None:
            raise KeyError(f"no deployment {namespace}/{name}")
        key = (namespace, name, template_hash(deploy["spec"]["template"]))
        self.api.controller.unavailable[key] = available
        self.api.controller.reconcile(namespace, name)

    def compact(self) -> None:
        """Drop the watch history (like an etcd compaction): older watches get 410 Expired."""
        self.store.compact()

    # -- fault injection -----------------------------------------------------------------------

    def fail_next(self, method: str, path_prefix: str, status: int, count: int = 1,
                  reason: str = "") -> None:
        """Answer the next ``count`` matching requests (method or ``*``) with a Status error."""
        with self._lock:
            self._faults.append(Fault(method.upper(), path_prefix, status, count, reason))

    def set_hang(self, path_prefix: str, seconds: float) -> None:
        """Delay responses for paths under ``path_prefix`` (``seconds <= 0`` removes it)."""
        with self._lock:
            if seconds > 0:
                self._hangs[path_prefix] = seconds
            else:
                self._hangs.pop(path_prefix, None)

    def _take_fault(self, method: str, path: str) -> errors.ApiError | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and path.startswith(fault.path_prefix):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return errors.injected(fault.status, fault.reason)
        return None

    def _hang_for(self, path: str) -> float:
        with self._lock:
            return max((s for p, s in self._hangs.items() if path.startswith(p)), default=0.0)

    # -- HTTP entry point ----------------------------------------------------------------------

    def dispatch(self, method: str, raw_path: str, path: str, query: dict[str, str],
                 body: bytes, content_type: str, accept: str = "",
                 headers: Any = None) -> Response:
        with self._lock:
            self.requests.append((method, raw_path))
        delay = self._hang_for(path)
        if delay:
            deadline = time.monotonic() + delay
            self._stopping.wait(max(0.0, deadline - time.monotonic()))
        fault = self._take_fault(method, path)
        if fault is not None:
            raise fault
        review = self.auth.handle(method, path, body, content_type, headers or Message())
        if review is not None:
            return Response(201, review)
        return route(self.api, method, path, query, body, content_type,
                     self.url.removeprefix("http://"), accept)
