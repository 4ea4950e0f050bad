"""k8s-cluster over the fake apiserver: the planted faults (cluster_cases.py) stored as objects,
read back the way the probe reads a live cluster (one list per kind), diagnosed to the same root
cause and object; a kind the probe may not read becomes a note, never a crash or a false fault."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from agent.model import Observation, TargetSpec
from agent.model.context import ProbeContext
from probes.k8s_cluster import K8sClusterProbe
from tests.kubeapi.server import FakeApiServer
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, NS, healthy

PROBE = K8sClusterProbe()
NOW = datetime(2026, 12, 8, 0, 30, tzinfo=UTC)
TARGET = TargetSpec(name="cart", namespace=NS, deployment="cart")
API_VERSIONS = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "EndpointSlice": "discovery.k8s.io/v1",
                "StorageClass": "storage.k8s.io/v1", "PodMetrics": "metrics.k8s.io/v1beta1"}
NOT_SERVED = ("chaos", "leases")  # Chaos Mesh objects and node Leases: read from snapshots only
LIVE = sorted(c for c in CASES if c not in ("pod_network_delay", "node_network_delay", "node_packet_loss"))


def seed(api: FakeApiServer, lists: dict[str, list[dict[str, Any]]]) -> None:
    for ns in (NS, "kube-system"):
        api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for key, items in lists.items():
        if key in NOT_SERVED:
            continue
        for item in items:
            api.seed({"apiVersion": API_VERSIONS.get(item["kind"], "v1"), **item})


def diagnose(client: kubernetes.client.ApiClient) -> tuple[list[Any], dict[str, Any]]:
    data = asyncio.run(PROBE.collect(TARGET, ProbeContext(kube=lambda: client)))
    return PROBE.analyze(Observation(PROBE.name, TARGET.name, NOW, data), TARGET, NOW), data


@pytest.mark.parametrize("cause", LIVE)
def test_read_from_the_apiserver_the_root_cause_heads(kube_api: FakeApiServer,
                                                      kube_client: kubernetes.client.ApiClient, cause: str) -> None:
    obj, plant = CASES[cause]
    lists = healthy()
    plant(lists)
    seed(kube_api, lists)
    found, data = diagnose(kube_client)
    assert data["notes"] == []
    assert found and (found[0].kind, found[0].subject) == (cause, obj), [(f.kind, f.subject) for f in found]


def test_each_kind_is_listed_once_per_pass(kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    seed(kube_api, healthy())
    found, _ = diagnose(kube_client)
    assert found == []
    lists = [p for m, p in kube_api.requests if m == "GET" and "/log" not in p]
    paths = [p.split("?")[0] for p in lists]
    assert len(paths) == len(set(paths))  # no kind read twice


def test_a_kind_the_probe_may_not_read_is_a_note(kube_api: FakeApiServer,
                                                 kube_client: kubernetes.client.ApiClient) -> None:
    lists = healthy()
    CASES["node_cordoned"][1](lists)
    seed(kube_api, lists)
    kube_api.fail_next("GET", "/api/v1/nodes", 403)
    found, data = diagnose(kube_client)
    assert any(n.startswith("nodes: forbidden") for n in data["notes"])
    assert "nodes" not in data["cluster"]
    # the scheduler's verdict still names the cause; which node, only the nodes could say
    assert (found[0].kind, found[0].subject) == ("node_cordoned", "deployment/cart")


def test_a_sweeps_targets_read_each_list_once(kube_api: FakeApiServer,
                                              kube_client: kubernetes.client.ApiClient) -> None:
    """Two targets in one namespace diagnosed at once: each list is read once, not per target."""
    lists = healthy()
    orders = json.loads(json.dumps(lists["deployments"][0]).replace("cart", "orders"))
    lists["deployments"].append(orders)
    seed(kube_api, lists)
    ctx = ProbeContext(kube=lambda: kube_client)
    targets = [TARGET, TargetSpec(name="orders", namespace=NS, deployment="orders")]

    async def sweep() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(PROBE.collect(t, ctx) for t in targets)))

    first, second = asyncio.run(sweep())
    assert first["cluster"]["nodes"] == second["cluster"]["nodes"] and first["cluster"]["nodes"]
    lists_read = [p.split("?")[0] for m, p in kube_api.requests if m == "GET" and "/deployments/" not in p]
    assert sorted(lists_read) == sorted(set(lists_read))
    assert len([p for p in lists_read if p == "/api/v1/nodes"]) == 1
