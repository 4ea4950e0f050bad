"""scale-up: the scale subresource or the HPA's minReplicas, through the fake apiserver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from actions.scale_up import ScaleUpAction, size
from agent.model import PermanentError, Proposal, TargetSpec
from agent.model.context import ActionContext
from tests.kubeapi.server import FakeApiServer

NS, APP = "shop", "app"


def setup_cluster(api: FakeApiServer, replicas: int = 3) -> None:
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
              "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]}}}})


def seed_hpa(api: FakeApiServer, low: int = 2, high: int = 4) -> None:
    api.seed({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "app-hpa", "namespace": NS},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                       "minReplicas": low, "maxReplicas": high}})


def ctx_for(client: kubernetes.client.ApiClient, **limits: Any) -> ActionContext:
    return ActionContext(target=TargetSpec(name="shop-app", namespace=NS, deployment=APP),
                         kube=lambda: client, limits=limits)


def proposal(**params: Any) -> Proposal:
    return Proposal(id="p2", target="shop-app", action="scale-up", subject=APP, params=params, path=(),
                    reason="cpu saturated", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def replicas(api: FakeApiServer) -> int:
    deploy = api.get_object("apps/v1", "deployments", NS, APP)
    assert deploy is not None
    return int(deploy["spec"]["replicas"])


def version(api: FakeApiServer) -> str:
    deploy = api.get_object("apps/v1", "deployments", NS, APP)
    assert deploy is not None
    return str(deploy["metadata"]["resourceVersion"])


def hpa_bounds(api: FakeApiServer) -> tuple[int, int]:
    hpa = api.get_object("autoscaling/v2", "horizontalpodautoscalers", NS, "app-hpa")
    assert hpa is not None
    return hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]


def event_reasons(client: kubernetes.client.ApiClient) -> list[tuple[str, str]]:
    items = kubernetes.client.CoreV1Api(client).list_namespaced_event(NS).items
    return sorted((e.reason, e.involved_object.kind) for e in items)  # listed in name order


@pytest.fixture
def action() -> ScaleUpAction:
    return ScaleUpAction(poll_interval_s=0.01, verify_timeout_s=0.05)


def test_sizing_by_factor_and_replicas_with_the_limits_that_capped_it() -> None:
    assert size(3, {"factor": 2}, {}) == size(3, {}, {})
    assert size(3, {"factor": 2}, {}).target == 6
    assert size(3, {"factor": 4}, {"max_factor": 2}).capped == ("max_factor 2",)
    capped = size(3, {"factor": 4}, {"max_factor": 3, "max_replicas": 5})
    assert (capped.wanted, capped.target, capped.capped) == (12, 5, ("max_factor 3", "max_replicas 5"))
    assert size(0, {"factor": 2}, {}).target == 1  # from zero, a multiple is still zero
    assert size(8, {"replicas": 5}, {}).target == 8  # never a scale-down
    assert size(4, {"replicas": 40}, {"max_replicas": 10}).target == 10


def test_scale_capped_by_limits_then_idempotent_then_reverted(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client, max_replicas=5, max_factor=3)
    plan = run(action.plan(proposal(factor=4), ctx))
    assert plan.summary == ("scale deployment shop/app from 3 to 5 replicas "
                            "(capped by max_factor 3, max_replicas 5; asked 12)")
    assert [(c.field, c.before, c.after) for c in plan.changes] == [("spec.replicas", 3, 5)]

    assert run(action.execute(plan, ctx)).facts == {"changed": True}
    assert replicas(kube_api) == 5
    assert run(action.execute(plan, ctx)).facts == {"changed": False}
    assert run(action.verify(plan, ctx)).ok

    assert run(action.revert(plan, ctx)).facts == {"changed": True}
    assert replicas(kube_api) == 3
    assert event_reasons(kube_client) == [("HemostatScaleUp", "Deployment"),
                                          ("HemostatScaleUpReverted", "Deployment")]


def test_a_count_already_above_the_target_is_left_alone(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(replicas=5), ctx))
    kubernetes.client.AppsV1Api(kube_client).patch_namespaced_deployment_scale(
        APP, NS, {"spec": {"replicas": 9}})
    assert run(action.execute(plan, ctx)).facts == {"changed": False}
    assert replicas(kube_api) == 9


def test_hpa_min_replicas_raised_instead_of_fighting_it(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    seed_hpa(kube_api, 2, 4)
    ctx = ctx_for(kube_client, max_replicas=10)
    plan = run(action.plan(proposal(factor=2), ctx))
    assert plan.state["mode"] == "hpa" and "via hpa app-hpa minReplicas" in plan.summary
    assert [(c.field, c.before, c.after) for c in plan.changes] == [("spec.minReplicas", 2, 6),
                                                                    ("spec.maxReplicas", 4, 6)]
    assert run(action.execute(plan, ctx)).facts == {"changed": True}
    assert hpa_bounds(kube_api) == (6, 6)
    assert replicas(kube_api) == 3  # the HPA scales the deployment, not us
    assert run(action.execute(plan, ctx)).facts == {"changed": False}
    assert run(action.revert(plan, ctx)).facts == {"changed": True}
    assert hpa_bounds(kube_api) == (2, 4)
    assert event_reasons(kube_client) == [("HemostatScaleUp", "HorizontalPodAutoscaler"),
                                          ("HemostatScaleUpReverted", "HorizontalPodAutoscaler")]


def test_dry_run_changes_nothing_in_both_modes(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client)
    before = version(kube_api)
    assert run(action.dry_run(run(action.plan(proposal(), ctx)), ctx)).ok
    assert version(kube_api) == before
    seed_hpa(kube_api)
    assert run(action.dry_run(run(action.plan(proposal(), ctx)), ctx)).ok
    assert hpa_bounds(kube_api) == (2, 4) and replicas(kube_api) == 3
    assert sum(1 for m, p in kube_api.requests if m == "PATCH" and "dryRun=All" in p) == 2
    assert event_reasons(kube_client) == []


def test_forbidden_scale_names_the_subresource(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{APP}/scale", 403)
    with pytest.raises(PermanentError) as err:
        run(action.execute(plan, ctx))
    assert str(err.value) == ("forbidden: cannot patch deployments/scale in namespace shop "
                              "— grant it in the Role")


def test_conflict_on_scale_is_retried(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{APP}/scale", 409, count=2)
    assert run(action.execute(plan, ctx)).facts["changed"]
    assert replicas(kube_api) == 6


def test_verify_reports_replicas_that_never_became_available(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: ScaleUpAction) -> None:
    setup_cluster(kube_api)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    kube_api.set_deployment_unavailable(NS, APP, 4)
    outcome = run(action.verify(plan, ctx))
    assert not outcome.ok and outcome.detail.startswith("4/6 replicas available")
