"""Helpers for the tests that run Hemostat's Kubernetes side against the real control plane.

`admin_client` is an official-client `ApiClient` as the cluster's admin (session); `ns` is a fresh
namespace per test, deleted afterwards without waiting. `eventually` polls the real controllers
(which act asynchronously, unlike the fake's controller-lite) until a check holds, bounded.
`probe_now` runs the real `k8s-workload` probe (collect + analyze) and is also the actions'
`reprobe`, so verify re-reads what a daemon would.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
import pytest
from kubernetes.client.exceptions import ApiException

from agent.model import Finding, Observation, Proposal, TargetSpec
from agent.model.context import ActionContext, ProbeContext
from probes.k8s_workload import K8sWorkloadProbe
from tests.cluster.fixtures import RealCluster

T = TypeVar("T")
JSON = dict[str, Any]
WORKLOAD = K8sWorkloadProbe()


def client_for(kubeconfig: str) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


@pytest.fixture(scope="session")
def admin_client(real_cluster: RealCluster) -> Iterator[kubernetes.client.ApiClient]:
    with client_for(str(real_cluster.kubeconfig)) as client:
        yield client


@pytest.fixture
def ns(admin_client: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace (the default ServiceAccount is not waited for: nothing here needs it)."""
    name = f"hm-{secrets.token_hex(4)}"
    core = kubernetes.client.CoreV1Api(admin_client)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def eventually(check: Callable[[], T | None], timeout_s: float = 60.0, what: str = "condition",
               interval_s: float = 0.2) -> T:
    """`check()` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:g}s (last: {value!r})")
        time.sleep(interval_s)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def pod_template(app: str, image: str, env: str | None = None, memory: str = "64Mi") -> JSON:
    container: JSON = {"name": "app", "image": image,
                       "resources": {"requests": {"cpu": "50m", "memory": memory}}}
    if env is not None:
        container["env"] = [{"name": "MODE", "value": env}]
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container],
                                                            "terminationGracePeriodSeconds": 0}}


def workload(kind: str, name: str, image: str, replicas: int = 2, **spec: Any) -> JSON:
    body: JSON = {"selector": {"matchLabels": {"app": name}}, "template": pod_template(name, image), **spec}
    if kind != "DaemonSet":
        body["replicas"] = replicas
    if kind == "StatefulSet":
        body.setdefault("serviceName", name)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": body}


def create(client: kubernetes.client.ApiClient, namespace: str, obj: JSON) -> JSON:
    """POST `obj` (a built-in apps/v1 or v1 kind) into `namespace`; the stored object."""
    api = kubernetes.client.AppsV1Api(client)
    core = kubernetes.client.CoreV1Api(client)
    creators: dict[str, Callable[..., Any]] = {
        "Deployment": api.create_namespaced_deployment, "StatefulSet": api.create_namespaced_stateful_set,
        "DaemonSet": api.create_namespaced_daemon_set, "ConfigMap": core.create_namespaced_config_map,
    }
    response = creators[obj["kind"]](namespace, obj, _preload_content=False)
    return json.loads(response.data)  # type: ignore[no-any-return]


def read(client: kubernetes.client.ApiClient, kind: str, namespace: str, name: str) -> JSON:
    api = kubernetes.client.AppsV1Api(client)
    readers: dict[str, Callable[..., Any]] = {
        "Deployment": api.read_namespaced_deployment, "StatefulSet": api.read_namespaced_stateful_set,
        "DaemonSet": api.read_namespaced_daemon_set,
        "ConfigMap": kubernetes.client.CoreV1Api(client).read_namespaced_config_map,
    }
    return json.loads(readers[kind](name, namespace, _preload_content=False).data)  # type: ignore[no-any-return]


def set_image(client: kubernetes.client.ApiClient, kind: str, namespace: str, name: str, image: str,
              **template_spec: Any) -> None:
    api = kubernetes.client.AppsV1Api(client)
    patchers: dict[str, Callable[..., Any]] = {
        "Deployment": api.patch_namespaced_deployment, "StatefulSet": api.patch_namespaced_stateful_set,
        "DaemonSet": api.patch_namespaced_daemon_set}
    container: JSON = {"name": "app", "image": image, **template_spec}
    patchers[kind](name, namespace, {"spec": {"template": {"spec": {"containers": [container]}}}})


def rolled_out(client: kubernetes.client.ApiClient, kind: str, namespace: str, name: str) -> bool:
    """What `kubectl rollout status` waits for, per kind."""
    obj = read(client, kind, namespace, name)
    status, spec = obj.get("status") or {}, obj["spec"]
    if status.get("observedGeneration", 0) < obj["metadata"]["generation"]:
        return False
    if kind == "Deployment":
        want = spec["replicas"]
        return bool(status.get("updatedReplicas") == want == status.get("availableReplicas")
                    and status.get("replicas") == want)
    if kind == "StatefulSet":
        return bool(status.get("currentRevision") == status.get("updateRevision")
                    and status.get("readyReplicas") == spec["replicas"] == status.get("updatedReplicas"))
    return bool(status.get("desiredNumberScheduled")
                and status.get("updatedNumberScheduled") == status["desiredNumberScheduled"]
                == status.get("numberAvailable"))


def wait_rolled_out(client: kubernetes.client.ApiClient, kind: str, namespace: str, name: str,
                    timeout_s: float = 90.0) -> None:
    eventually(lambda: rolled_out(client, kind, namespace, name), timeout_s, f"{kind} {namespace}/{name} rolled out")


def target(namespace: str, name: str, kind: str = "Deployment", **extra: Any) -> TargetSpec:
    return TargetSpec(name=f"{namespace}-{name}", namespace=namespace, deployment=name, kind=kind,  # type: ignore[arg-type]
                      **extra)


async def findings(spec: TargetSpec, client: kubernetes.client.ApiClient) -> list[Finding]:
    data = await WORKLOAD.collect(spec, ProbeContext(kube=lambda: client))
    now = datetime.now(UTC)
    return WORKLOAD.analyze(Observation(WORKLOAD.name, spec.name, now, data), spec, now)


def probe_now(spec: TargetSpec, client: kubernetes.client.ApiClient) -> dict[str, Finding]:
    return {f.kind: f for f in run(findings(spec, client))}


def action_ctx(spec: TargetSpec, client: kubernetes.client.ApiClient, **extra: Any) -> ActionContext:
    async def reprobe(again: TargetSpec, probe: str) -> list[Finding]:
        assert probe == WORKLOAD.name, probe
        return await findings(again, client)
    return ActionContext(target=spec, kube=lambda: client, reprobe=reprobe, **extra)


def proposal(action: str, subject: str, **params: Any) -> Proposal:
    return Proposal(id=f"p-{secrets.token_hex(3)}", target="t", action=action, subject=subject, params=params,
                    path=(), reason="cluster test", created_at=datetime.now(UTC))


def api_error(call: Callable[[], Any]) -> ApiException:
    try:
        call()
    except ApiException as e:
        return e
    raise AssertionError("the call succeeded")


def cri_log(path: Path, lines: list[str]) -> None:
    """Lines in the CRI log format kwok's kubelet serves (`TIME STREAM F text`), stamped now."""
    now = datetime.now(UTC)
    path.write_text("".join(f"{(now - timedelta(seconds=len(lines) - i)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
                            f" stdout F {line}\n" for i, line in enumerate(lines)))


def serve_logs(client: kubernetes.client.ApiClient, ns: str, pod: str, path: Path) -> None:
    kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", ns, "logs", {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": pod},
            "spec": {"logs": [{"containers": ["app"], "logsFile": str(path)}]}})
