"""scale-up where the Deployment is not the whole story: a StatefulSet, a KEDA ScaledObject that
owns the HPA, and a GitOps controller that would put the replica count back."""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest

from actions.scale_up import ScaleUpAction
from agent.model import TargetSpec
from agent.model.context import ActionContext
from tests.actions.test_scale_up import APP, NS, proposal, replicas, run, setup_cluster
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.server import FakeApiServer


@pytest.fixture
def action() -> ScaleUpAction:
    return ScaleUpAction(poll_interval_s=0.01, verify_timeout_s=0.05)


def seed_keda(api: FakeApiServer, ns: str = NS) -> None:
    """A ScaledObject for the Deployment and the HPA KEDA made for it."""
    register_gitops_crds(api)
    api.seed({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": APP, "namespace": ns},
              "spec": {"scaleTargetRef": {"name": APP}, "minReplicaCount": 2, "maxReplicaCount": 5,
                       "triggers": [{"type": "cpu", "metadata": {"value": "80"}}]}})
    api.seed({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": f"keda-hpa-{APP}", "namespace": ns,
                           "labels": {"scaledobject.keda.sh/name": APP}},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                       "minReplicas": 2, "maxReplicas": 5}})


def scaled_object(api: FakeApiServer) -> tuple[int, int]:
    obj = api.get_object("keda.sh/v1alpha1", "scaledobjects", NS, APP)
    assert obj is not None
    return obj["spec"]["minReplicaCount"], obj["spec"]["maxReplicaCount"]


def test_keda_owned_hpa_is_scaled_through_its_scaled_object(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    seed_keda(kube_api)
    ctx = ActionContext(target=TargetSpec(name="shop-app", namespace=NS, deployment=APP), kube=lambda: kube_client)
    plan = run(action.plan(proposal(replicas=6), ctx))
    assert plan.summary == f"scale deployment {NS}/{APP} from 3 to 6 replicas via scaledobject {APP} minReplicaCount"
    assert run(action.dry_run(plan, ctx)).ok and scaled_object(kube_api) == (2, 5)
    assert run(action.execute(plan, ctx)).ok and scaled_object(kube_api) == (6, 6)
    hpa = kube_api.get_object("autoscaling/v2", "horizontalpodautoscalers", NS, f"keda-hpa-{APP}")
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2  # KEDA's to change, not ours
    assert run(action.revert(plan, ctx)).ok and scaled_object(kube_api) == (2, 5)


def test_a_statefulset_is_scaled_through_its_scale_subresource(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.seed({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": APP, "namespace": NS},
                   "spec": {"replicas": 2, "serviceName": APP, "selector": {"matchLabels": {"app": "db"}},
                            "template": {"metadata": {"labels": {"app": "db"}},
                                         "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}})
    target = TargetSpec(name="shop-app", namespace=NS, deployment=APP, kind="StatefulSet")
    ctx = ActionContext(target=target, kube=lambda: kube_client)
    plan = run(action.plan(proposal(factor=2), ctx))
    assert plan.summary == f"scale statefulset {NS}/{APP} from 2 to 4 replicas"
    run(action.execute(plan, ctx))
    sts = kube_api.get_object("apps/v1", "statefulsets", NS, APP)
    assert sts is not None and sts["spec"]["replicas"] == 4
    assert run(action.verify(plan, ctx)).ok


@pytest.mark.parametrize(("ignore", "warned"), [(None, True), (["/spec/replicas"], False)])
def test_scaling_a_self_healed_deployment_warns_unless_replicas_are_ignored(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction,
        ignore: list[str] | None, warned: bool) -> None:
    setup_cluster(kube_api)
    register_gitops_crds(kube_api)
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}})
    deploy: dict[str, Any] = kube_api.get_object("apps/v1", "deployments", NS, APP) or {}
    deploy["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": f"shop:apps/Deployment:{NS}/{APP}"}
    kube_api.seed(deploy)
    spec: dict[str, Any] = {"source": {"repoURL": "https://git.example/d.git"},
                            "syncPolicy": {"automated": {"selfHeal": True}}}
    if ignore:
        spec["ignoreDifferences"] = [{"group": "apps", "kind": "Deployment", "jsonPointers": ignore}]
    kube_api.seed({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "shop", "namespace": "argocd"}, "spec": spec})
    ctx = ActionContext(target=TargetSpec(name="shop-app", namespace=NS, deployment=APP), kube=lambda: kube_client)
    plan = run(action.plan(proposal(factor=2), ctx))
    warning = ("warning: app is managed by Argo CD app argocd/shop, auto-sync with self-heal, which will put "
               "the replica count back")
    assert (warning in plan.summary) is warned
    assert run(action.execute(plan, ctx)).ok and replicas(kube_api) == 6
