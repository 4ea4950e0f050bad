"""k8s-workload reads StatefulSets, DaemonSets and Argo Rollouts as it reads Deployments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from agent.model import Observation, TargetSpec
from agent.model.context import ProbeContext
from probes.k8s_workload import K8sWorkloadProbe
from tests.actions.test_rollback_workloads import APP, NS, image, set_image, workload
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.rollouts import RolloutsController
from tests.kubeapi.server import FakeApiServer


def observe(client: kubernetes.client.ApiClient, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    target = TargetSpec(name="shop-db", namespace=NS, deployment=APP, kind=kind)  # type: ignore[arg-type]
    data = asyncio.run(K8sWorkloadProbe().collect(target, ProbeContext(kube=lambda: client)))
    now = datetime.now(UTC)
    findings = K8sWorkloadProbe().analyze(Observation("k8s-workload", "shop-db", now, data), target, now)
    return data, {f.kind: f for f in findings}


@pytest.mark.parametrize(("kind", "replicas"), [("StatefulSet", 3), ("DaemonSet", 1), ("Rollout", 3)])
def test_other_workload_kinds_show_replicas_history_and_the_recent_rollout(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, kind: str, replicas: int) -> None:
    register_gitops_crds(kube_api)
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.seed(workload(kind, "postgres:15"))
    controller = RolloutsController(kube_api)
    controller.reconcile()
    set_image(kube_client, kind, "postgres:16")
    controller.reconcile()
    assert image(kube_api, kind) == "postgres:16"
    data, findings = observe(kube_client, kind)
    assert (data["deployment"]["replicas"], data["deployment"]["available"]) == (replicas, replicas)
    history = [(rs["revision"], rs["images"]["app"]) for rs in data["replicasets"]]
    assert history == [(2, "postgres:16"), (1, "postgres:15")]
    assert findings["recent_deploy"].facts["image"] == "postgres:16"
    assert "replicas_unavailable" not in findings
