"""The fake apiserver's contract suite (tests/kubeapi/test_contract.py), run here against the
real control plane: the same test functions, with `kube_api` an adapter to the real cluster
instead of the fake. Tests marked `fake_only` (they drive hooks only the fake has: fault
injection, hangs, compaction, seeded pod phases and logs) are deselected, not skipped. What the
real server answered differently was fixed in the fake or, where the test assumed something no
cluster does, in the test (docs/testing-kubernetes.md, "The fake and the real side by side")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S, RealCluster
from tests.kubeapi.adapter import ClusterAdapter
from tests.kubeapi.test_contract import *  # noqa: F403  (the contract's tests and fixtures)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]


@pytest.fixture
def kube_api(real_cluster: RealCluster) -> Iterator[ClusterAdapter]:  # the contract's backend
    api = ClusterAdapter(str(real_cluster.kubeconfig))
    api.start()
    try:
        yield api
    finally:
        api.stop()
