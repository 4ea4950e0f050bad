"""GitOps on the real control plane: minimal CRDs of our own for Argo CD's `Application`, Argo
Rollouts' `Rollout` and KEDA's `ScaledObject` (schemas that keep unknown fields, the projects'
names, short names and status subresources: Application has none, as in Argo CD), and
`RealBackend`, the four calls tests/kubeapi/gitops.py's `GitOpsController` makes of the fake
(`get_object`, `list_objects`, `apply`, `put_custom`) made over the real API instead, so the
same self-heal simulator runs against the real apiserver and the real Deployment controller."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]
Client = kubernetes.client.ApiClient
PRESERVE = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
# (group, version, plural, kind, short names, status subresource)
CRDS = [("argoproj.io", "v1alpha1", "applications", "Application", ["app", "apps"], False),
        ("argoproj.io", "v1alpha1", "rollouts", "Rollout", ["ro"], True),
        ("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", ["so"], True)]


def crd(group: str, version: str, plural: str, kind: str, short: list[str], status: bool) -> Obj:
    served: Obj = {"name": version, "served": True, "storage": True, "schema": PRESERVE}
    if status:
        served["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": [served],
                     "names": {"plural": plural, "kind": kind, "singular": kind.lower(), "shortNames": short}}}


def install_crds(client: Client) -> None:
    """Create the CRDs once per cluster (kept: other tests may use them) and wait until served."""
    extensions = kubernetes.client.ApiextensionsV1Api(client)
    for spec in CRDS:
        try:
            extensions.create_custom_resource_definition(crd(*spec))
        except ApiException as e:
            if e.status != 409:
                raise
    deadline = time.monotonic() + 30
    for group, version, plural, *_ in CRDS:
        while True:
            try:
                kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(group, version, plural)
                break
            except ApiException:
                assert time.monotonic() < deadline, f"{plural}.{group} not served"
                time.sleep(0.2)


class RealBackend:
    """The fake's controller hooks over the real API (admin credentials)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _call(self, method: str, path: str, body: Obj | None = None) -> Any:
        params = self.client.param_serialize(method, path, header_params={
            "Accept": "application/json", "Content-Type": "application/json"}, body=body,
            auth_settings=["BearerToken"])
        response = self.client.call_api(*params)
        response.read()
        if response.status >= 400:
            raise ApiException(http_resp=response)
        return json.loads(response.data or b"null")

    @staticmethod
    def _path(api_version: str, plural: str, namespace: str | None, name: str = "") -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{where}/{plural}" + (f"/{name}" if name else "")

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        try:
            found: Obj = self._call("GET", self._path(api_version, plural, namespace, name))
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return found

    def list_objects(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[Obj]:
        api_version = f"{group}/{version}" if group else version
        try:
            items: list[Obj] = self._call("GET", self._path(api_version, plural, namespace))["items"]
        except ApiException as e:
            if e.status == 404:
                return []
            raise
        return items

    def apply(self, obj: Obj, keep: tuple[str, ...] = ()) -> Obj:
        """Create, or replace spec/labels/annotations (a client-side apply), keeping the live
        replicas when asked; a conflict with a controller's write is retried."""
        meta = obj["metadata"]
        plural = f"{obj['kind'].lower()}s"
        for _ in range(5):
            current = self.get_object(obj["apiVersion"], plural, meta["namespace"], meta["name"])
            if current is None:
                created: Obj = self._call("POST", self._path(obj["apiVersion"], plural, meta["namespace"]), obj)
                return created
            merged = copy.deepcopy(current)
            merged["spec"] = copy.deepcopy(obj.get("spec"))
            for field in ("labels", "annotations"):
                merged["metadata"].setdefault(field, {}).update(meta.get(field) or {})
            if "spec.replicas" in keep and "replicas" in current.get("spec", {}):
                merged["spec"]["replicas"] = current["spec"]["replicas"]
            try:
                replaced: Obj = self._call("PUT", self._path(obj["apiVersion"], plural, meta["namespace"],
                                                             meta["name"]), merged)
                return replaced
            except ApiException as e:
                if e.status != 409:
                    raise
        raise AssertionError(f"could not apply {meta['name']}: conflicts")

    def put_custom(self, obj: Obj) -> bool:
        """PUT a custom resource whole; False when someone wrote it since it was read."""
        meta = obj["metadata"]
        group_version = obj["apiVersion"]
        plural = f"{obj['kind'].lower()}s"
        try:
            self._call("PUT", self._path(group_version, plural, meta["namespace"], meta["name"]), obj)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True
