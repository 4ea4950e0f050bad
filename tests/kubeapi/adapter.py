"""``ClusterAdapter``: the ``FakeApiServer`` surface over a real cluster (contract runs on kind).

Only the portable part is implemented; fake-only hooks (logs, faults, hangs, rollout
simulation, compaction) raise ``NotImplementedError`` and their tests are marked
``fake_only``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, NoReturn

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from tests.kubeapi.resources import Registry, ResourceType

FAKE_ONLY = "fake-only hook: mark the test with @pytest.mark.fake_only"


class ClusterAdapter:
    """Talks to the cluster in ``kubeconfig`` with the same seeding/reading helpers."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.registry = Registry()
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._crds: list[str] = []
        self._client: kubernetes.client.ApiClient | None = None

    def start(self) -> str:
        self._client = kubernetes.client.ApiClient(self.client_configuration())
        self.url = str(self._client.configuration.host)
        return self.url

    def stop(self) -> None:
        extensions = kubernetes.client.ApiextensionsV1Api(self._api())
        for name in self._crds:
            extensions.delete_custom_resource_definition(name)
        for name in self._crds:  # gone before the next test registers it again (else 409)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    extensions.read_custom_resource_definition(name)
                except ApiException as exc:
                    if exc.status == 404:
                        break
                    raise
                time.sleep(0.1)
        self._api().close()  # type: ignore[no-untyped-call]

    def client_configuration(self) -> kubernetes.client.Configuration:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig, client_configuration=configuration)
        return configuration

    def _api(self) -> kubernetes.client.ApiClient:
        assert self._client is not None, "start() first"
        return self._client

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        api = self._api()
        params = api.param_serialize(method, path, header_params={
            "Accept": "application/json", "Content-Type": "application/json"},
            body=body, auth_settings=["BearerToken"])
        response = api.call_api(*params)
        response.read()  # type: ignore[no-untyped-call]
        if response.status >= 400:
            raise ApiException(http_resp=response)
        return json.loads(response.data or b"null")

    def _type(self, api_version: str, kind: str = "", plural: str = "") -> ResourceType:
        rt = (self.registry.by_kind(api_version, kind) if kind
              else self.registry.by_path(api_version, plural))
        if rt is None:
            raise ValueError(f"unknown type {api_version} {kind or plural}")
        return rt

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self._type(obj["apiVersion"], kind=obj["kind"])
        namespace = obj.get("metadata", {}).get("namespace", "default")
        result: dict[str, Any] = self._call("POST", rt.path(namespace), obj)
        return result

    def get_object(self, api_version: str, kind_plural: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        rt = self._type(api_version, plural=kind_plural)
        try:
            result: dict[str, Any] = self._call("GET", rt.path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def register_custom_resource(self, group: str, version: str, plural: str, kind: str,
                                 namespaced: bool = True,
                                 printer_columns: tuple[tuple[str, str, str], ...] = (),
                                 short_names: tuple[str, ...] = ()) -> None:
        self.registry.add(ResourceType(group, version, plural, kind, namespaced, ("status",),
                                       generation=True, custom=True, short_names=short_names,
                                       printer_columns=printer_columns))
        extensions = kubernetes.client.ApiextensionsV1Api(self._api())
        name = f"{plural}.{group}"
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        crd: Any = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                     "names": {"plural": plural, "kind": kind, "shortNames": list(short_names)},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema},
                                   "additionalPrinterColumns": [
                                       {"name": n, "type": t, "jsonPath": re.sub(r"\.(\d+)", r"[\1]", p)}
                                       for n, t, p in printer_columns],
                                   "subresources": {"status": {}}}]}}
        extensions.create_custom_resource_definition(crd)
        self._crds.append(name)
        self._await_established(extensions, name)

    @staticmethod
    def _await_established(extensions: kubernetes.client.ApiextensionsV1Api, name: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            crd = extensions.read_custom_resource_definition(name)
            if any(c.type == "Established" and c.status == "True"
                   for c in ((crd.status.conditions if crd.status else None) or [])):
                time.sleep(1)  # discovery caches catch up a moment after Established
                return
            time.sleep(0.2)
        raise TimeoutError(f"CRD {name} not established")

    def set_pod_log(self, namespace: str, pod: str, container: str, text: str,
                    previous: bool = False, timestamps: list[datetime] | None = None) -> NoReturn:
        raise NotImplementedError(FAKE_ONLY)

    def fail_next(self, method: str, path_prefix: str, status: int, count: int = 1,
                  reason: str = "") -> NoReturn:
        raise NotImplementedError(FAKE_ONLY)

    def set_hang(self, path_prefix: str, seconds: float) -> NoReturn:
        raise NotImplementedError(FAKE_ONLY)

    def set_deployment_unavailable(self, namespace: str, name: str, available: int) -> NoReturn:
        raise NotImplementedError(FAKE_ONLY)

    def compact(self) -> NoReturn:
        raise NotImplementedError(FAKE_ONLY)
