"""Fixtures for the fake kube-apiserver contract tests."""

from __future__ import annotations

import pytest

from tests.kubeapi.fixtures import fake_api, kube_api, kube_client, kube_namespace, skip_fake_only

__all__ = ["fake_api", "kube_api", "kube_client", "kube_namespace"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_only: uses FakeApiServer-only hooks; skipped with HEMOSTAT_E2E_KUBECONFIG")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_fake_only(items)
