"""Fixtures of the real-control-plane tests (the session cluster itself is `real_cluster`)."""

import pytest

from tests.cluster.kube import admin_client, ns  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The contract suite's fake-only tests have nothing to run against here: deselected."""
    fake_only = [i for i in items if "test_contract_real" in i.nodeid and i.get_closest_marker("fake_only")]
    if fake_only:
        config.hook.pytest_deselected(items=fake_only)
        items[:] = [i for i in items if i not in fake_only]
