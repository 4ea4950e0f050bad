"""Pytest fixtures for the fake apiserver (or a real cluster with HEMOSTAT_E2E_KUBECONFIG).

Import into a conftest: ``from tests.kubeapi.fixtures import kube_api``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import kubernetes.client
import pytest

from tests.kubeapi.adapter import ClusterAdapter
from tests.kubeapi.server import FakeApiServer

E2E_ENV = "HEMOSTAT_E2E_KUBECONFIG"
KubeApi = FakeApiServer | ClusterAdapter


def e2e_kubeconfig() -> str | None:
    return os.environ.get(E2E_ENV) or None


@pytest.fixture
def kube_api() -> Iterator[KubeApi]:
    """A started fake apiserver, or an adapter to the real cluster in $HEMOSTAT_E2E_KUBECONFIG."""
    kubeconfig = e2e_kubeconfig()
    api: KubeApi = ClusterAdapter(kubeconfig) if kubeconfig else FakeApiServer()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def fake_api(kube_api: KubeApi) -> FakeApiServer:
    """The fake itself, for tests marked ``fake_only`` (skipped against a real cluster)."""
    assert isinstance(kube_api, FakeApiServer), "mark tests using fake_api with fake_only"
    return kube_api


@pytest.fixture
def kube_client(kube_api: KubeApi) -> Iterator[kubernetes.client.ApiClient]:
    """An official-client ``ApiClient`` pointed at ``kube_api``; closed after the test."""
    with kubernetes.client.ApiClient(kube_api.client_configuration()) as api_client:
        yield api_client


@pytest.fixture
def kube_namespace(kube_client: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (so contract tests also isolate on a cluster)."""
    name = f"hemostat-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(kube_client)
    core.create_namespace(kubernetes.client.V1Namespace(
        metadata=kubernetes.client.V1ObjectMeta(name=name)))
    # a cluster's root-CA publisher adds kube-root-ca.crt a moment later (the fake at once)
    deadline = time.monotonic() + 30
    while not core.list_namespaced_config_map(name, field_selector="metadata.name=kube-root-ca.crt").items:
        assert time.monotonic() < deadline, f"no kube-root-ca.crt in namespace {name}"
        time.sleep(0.05)
    yield name
    core.delete_namespace(name)


def skip_fake_only(items: list[pytest.Item]) -> None:
    """Against a real cluster, skip tests that need the fake's test-only hooks."""
    if not e2e_kubeconfig():
        return
    marker = pytest.mark.skip(reason=f"fake_only: needs fake apiserver hooks ({E2E_ENV} set)")
    for item in items:
        if item.get_closest_marker("fake_only"):
            item.add_marker(marker)
