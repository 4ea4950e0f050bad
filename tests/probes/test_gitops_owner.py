"""k8s-workload tells who owns the workload: Argo CD or Flux, from its marks and their objects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from agent.model import Observation, TargetSpec
from agent.model.context import ProbeContext
from agent.model.gitops import owner_of
from probes.k8s_workload import K8sWorkloadProbe
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.server import FakeApiServer

NS, APP = "shop", "checkout"
TARGET = TargetSpec(name=APP, namespace=NS, deployment=APP)


def seed(api: FakeApiServer, labels: dict[str, str] | None = None,
         annotations: dict[str, str] | None = None) -> None:
    register_gitops_crds(api)
    for ns in (NS, "argocd", "flux-system"):
        api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": APP, "namespace": NS, "labels": labels or {},
                           "annotations": annotations or {}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
                       "template": {"metadata": {"labels": {"app": APP}},
                                    "spec": {"containers": [{"name": "app", "image": "shop/checkout:2"}]}}}})


def application(api: FakeApiServer, sync_policy: dict[str, Any], **spec: Any) -> None:
    api.seed({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
              "metadata": {"name": APP, "namespace": "argocd"},
              "spec": {"source": {"repoURL": "https://git.example/deploys.git", "path": "checkout"},
                       "destination": {"namespace": NS}, "syncPolicy": sync_policy, **spec},
              "status": {"sync": {"status": "Synced", "revision": "3f2a9c0"},
                         "health": {"status": "Degraded"}}})


def diagnose(client: kubernetes.client.ApiClient) -> dict[str, Any]:
    now = datetime.now(UTC)
    data = asyncio.run(K8sWorkloadProbe().collect(TARGET, ProbeContext(kube=lambda: client)))
    findings = K8sWorkloadProbe().analyze(Observation("k8s-workload", APP, now, data), TARGET, now)
    return {f.kind: f for f in findings}


def test_argo_cd_tracking_annotation_names_the_app_and_its_self_heal(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    seed(kube_api, annotations={"argocd.argoproj.io/tracking-id": f"{APP}:apps/Deployment:{NS}/{APP}"})
    application(kube_api, {"automated": {"selfHeal": True, "prune": True}},
                ignoreDifferences=[{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])
    found = diagnose(kube_client)["gitops_managed"]
    assert found.summary == "checkout is managed by Argo CD app argocd/checkout, auto-sync with self-heal"
    assert "ignoreDifferences covers /spec/replicas: scaling holds" in found.evidence
    assert found.facts["revision"] == "3f2a9c0" and found.facts["health"] == "Degraded"


def test_flux_labels_name_the_kustomization_and_a_suspended_one_says_so(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    seed(kube_api, labels={"kustomize.toolkit.fluxcd.io/name": "apps",
                           "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
    kube_api.seed({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "flux-system"},
                   "spec": {"interval": "5m", "path": "./apps", "suspend": True,
                            "sourceRef": {"kind": "GitRepository", "name": "deploys"}}})
    found = diagnose(kube_client)["gitops_managed"]
    assert found.summary == "checkout is managed by Flux Kustomization flux-system/apps, auto-sync suspended"


def test_a_helm_instance_label_without_an_application_is_not_gitops(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    seed(kube_api, labels={"app.kubernetes.io/instance": "checkout"})
    assert "gitops_managed" not in diagnose(kube_client)


def test_an_owner_that_cannot_be_read_is_said_so(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    seed(kube_api, annotations={"argocd.argoproj.io/tracking-id": f"{APP}:apps/Deployment:{NS}/{APP}"})
    found = diagnose(kube_client)["gitops_managed"]
    assert "could not be read" in found.summary


@pytest.mark.parametrize(("annotations", "labels", "owner"), [
    ({"argocd.argoproj.io/tracking-id": "team-a_web:apps/Deployment:shop/web"}, {},
     ("Application", "team-a", "web")),
    ({}, {"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "flux-system"},
     ("HelmRelease", "flux-system", "web")),
    ({}, {"app": "web"}, None),
])
def test_owner_marks(annotations: dict[str, str], labels: dict[str, str],
                     owner: tuple[str, str, str] | None) -> None:
    found = owner_of({"metadata": {"namespace": "shop", "labels": labels, "annotations": annotations}})
    assert (None if found is None else (found.kind, found.namespace, found.name)) == owner
