"""rollback beyond Deployments: StatefulSets and DaemonSets through their ControllerRevisions,
Argo Rollouts aborted mid-canary or undone, against the fake apiserver over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from actions.rollback import RollbackAction
from agent.model import Proposal, TargetSpec
from agent.model.context import ActionContext
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.rollouts import RolloutsController
from tests.kubeapi.server import FakeApiServer

NS, APP = "shop", "db"
GROUPS = {"Deployment": ("apps/v1", "deployments"), "StatefulSet": ("apps/v1", "statefulsets"),
          "DaemonSet": ("apps/v1", "daemonsets"),
          "Rollout": ("argoproj.io/v1alpha1", "rollouts")}


def workload(kind: str, image: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": APP}},
                            "template": {"metadata": {"labels": {"app": APP}},
                                         "spec": {"containers": [{"name": "app", "image": image}]}}, **spec}
    if kind != "DaemonSet":
        body["replicas"] = 3
    return {"apiVersion": GROUPS[kind][0], "kind": kind, "metadata": {"name": APP, "namespace": NS},
            "spec": body}


def ctx(client: kubernetes.client.ApiClient, kind: str) -> ActionContext:
    return ActionContext(target=TargetSpec(name="shop-db", namespace=NS, deployment=APP, kind=kind),  # type: ignore[arg-type]
                         kube=lambda: client)


def proposal(**params: Any) -> Proposal:
    return Proposal(id="p-w", target="shop-db", action="rollback", subject=APP, params=params, path=(),
                    reason="bad release", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def image(api: FakeApiServer, kind: str) -> str:
    obj = api.get_object(*GROUPS[kind], NS, APP)
    assert obj is not None
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def set_image(client: kubernetes.client.ApiClient, kind: str, value: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": value}]}}}}
    if kind == "Rollout":
        kubernetes.client.CustomObjectsApi(client).patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NS, "rollouts", APP,
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": value}]}}}})
        return
    apps = kubernetes.client.AppsV1Api(client)
    fn = apps.patch_namespaced_stateful_set if kind == "StatefulSet" else apps.patch_namespaced_daemon_set
    fn(APP, NS, patch)


@pytest.fixture
def action() -> RollbackAction:
    return RollbackAction(poll_interval_s=0.01, verify_timeout_s=5)


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_rollback_goes_back_through_controller_revisions_and_revert_rolls_forward(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction,
        kind: str) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.seed(workload(kind, "postgres:15"))
    set_image(kube_client, kind, "postgres:16")
    plan = run(action.plan(proposal(), ctx(kube_client, kind)))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (2, 1)
    assert "postgres:15" in plan.changes[0].after
    assert run(action.dry_run(plan, ctx(kube_client, kind))).ok and image(kube_api, kind) == "postgres:16"
    assert run(action.execute(plan, ctx(kube_client, kind))).facts["changed"] is True
    assert image(kube_api, kind) == "postgres:15"
    revisions = kubernetes.client.AppsV1Api(kube_client).list_namespaced_controller_revision(NS).items
    assert sorted(r.revision for r in revisions) == [2, 3]  # the old revision re-used, renumbered
    verified = run(action.verify(plan, ctx(kube_client, kind)))
    assert verified.ok, verified.detail
    assert run(action.execute(plan, ctx(kube_client, kind))).facts["changed"] is False
    assert run(action.revert(plan, ctx(kube_client, kind))).ok and image(kube_api, kind) == "postgres:16"


def rollout(api: FakeApiServer, client: kubernetes.client.ApiClient, pause: bool) -> RolloutsController:
    register_gitops_crds(api)
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    steps = [{"setWeight": 20}, {"pause": {}}] if pause else [{"setWeight": 100}]
    api.seed(workload("Rollout", "shop/db:1", strategy={"canary": {"steps": steps}}))
    controller = RolloutsController(api)
    controller.reconcile()
    set_image(client, "Rollout", "shop/db:2")
    controller.reconcile()
    return controller


def status(api: FakeApiServer) -> dict[str, Any]:
    obj = api.get_object("argoproj.io/v1alpha1", "rollouts", NS, APP)
    assert obj is not None
    return dict(obj["status"])


def test_a_paused_canary_is_aborted_so_the_stable_replicaset_serves(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    controller = rollout(kube_api, kube_client, pause=True)
    assert status(kube_api)["phase"] == "Paused"
    plan = run(action.plan(proposal(), ctx(kube_client, "Rollout")))
    assert plan.state["op"] == "abort" and plan.summary.startswith("abort the update of rollout shop/db")
    assert run(action.execute(plan, ctx(kube_client, "Rollout"))).ok
    controller.start()
    verified = run(action.verify(plan, ctx(kube_client, "Rollout")))
    controller.stop()
    assert verified.ok, verified.detail
    assert status(kube_api)["phase"] == "Degraded" and status(kube_api)["message"].startswith("RolloutAborted")
    assert run(action.revert(plan, ctx(kube_client, "Rollout"))).detail == "retried the update"
    controller.reconcile()
    assert status(kube_api)["phase"] == "Paused"


def test_a_finished_rollout_is_undone_to_its_previous_replicaset(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    controller = rollout(kube_api, kube_client, pause=False)
    assert status(kube_api)["phase"] == "Healthy"
    plan = run(action.plan(proposal(), ctx(kube_client, "Rollout")))
    assert (plan.state["op"], plan.state["to_revision"]) == ("undo", 1)
    run(action.execute(plan, ctx(kube_client, "Rollout")))
    controller.start()
    verified = run(action.verify(plan, ctx(kube_client, "Rollout")))
    controller.stop()
    assert verified.ok, verified.detail
    assert image(kube_api, "Rollout") == "shop/db:1" and status(kube_api)["phase"] == "Healthy"
