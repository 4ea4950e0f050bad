"""rollback: through the official client against the fake apiserver, over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import pytest

from actions.rollback import RollbackAction
from agent.model import Finding, PermanentError, Plan, Proposal, Severity, TargetSpec, TemporaryError
from agent.model.context import ActionContext
from tests.kubeapi.server import FakeApiServer

NS, APP = "shop", "app"
DEPLOY_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{APP}"
REVISION = "deployment.kubernetes.io/revision"


def deployment(image: str = "shop/app:1.0", env: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                                       "env": [{"name": "MODE", "value": env}]}]}}},
    }


def setup_cluster(api: FakeApiServer, client: kubernetes.client.ApiClient, revisions: int = 2) -> None:
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed(deployment())
    apps = kubernetes.client.AppsV1Api(client)
    for n in range(2, revisions + 1):
        apps.patch_namespaced_deployment(APP, NS, {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": f"shop/app:{n}.0", "env": [{"name": "MODE", "value": f"v{n}"}]}]}}}})


def ctx_for(client: kubernetes.client.ApiClient, **kwargs: Any) -> ActionContext:
    target = TargetSpec(name="shop-app", namespace=NS, deployment=APP)
    return ActionContext(target=target, kube=lambda: client, **kwargs)


def proposal(**params: Any) -> Proposal:
    return Proposal(id="p1", target="shop-app", action="rollback", subject=APP, params=params, path=(),
                    reason="deploy 2.0 4 min before the error spike", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def live(api: FakeApiServer) -> dict[str, Any]:
    obj = api.get_object("apps/v1", "deployments", NS, APP)
    assert obj is not None
    return obj


def image(api: FakeApiServer) -> str:
    return str(live(api)["spec"]["template"]["spec"]["containers"][0]["image"])


def events(client: kubernetes.client.ApiClient) -> list[Any]:
    return list(kubernetes.client.CoreV1Api(client).list_namespaced_event(NS).items)


@pytest.fixture
def action() -> RollbackAction:
    return RollbackAction(poll_interval_s=0.01, verify_timeout_s=0.05)


def test_rollback_picks_previous_revision_and_controller_makes_a_new_one(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client, revisions=3)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (3, 2)
    changes = {c.field: (c.before, c.after) for c in plan.changes}
    assert changes == {"containers[app].image": ("shop/app:3.0", "shop/app:2.0"),
                       "containers[app].env[MODE]": ("v3", "v2")}
    assert "pod-template-hash" not in plan.state["to_template"]["metadata"]["labels"]

    outcome = run(action.execute(plan, ctx))
    assert outcome.ok and outcome.facts == {"changed": True}
    assert image(kube_api) == "shop/app:2.0"
    assert live(kube_api)["metadata"]["annotations"][REVISION] == "4"
    assert "pod-template-hash" not in live(kube_api)["spec"]["template"]["metadata"]["labels"]


def test_executing_twice_changes_nothing_the_second_time(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    version = live(kube_api)["metadata"]["resourceVersion"]
    again = run(action.execute(plan, ctx))
    assert again.ok and again.facts == {"changed": False}
    assert live(kube_api)["metadata"]["resourceVersion"] == version
    assert len(events(kube_client)) == 1
    replan = run(action.plan(proposal(to_revision=3), ctx))
    assert "already there" in replan.summary


def test_execute_writes_an_event_on_the_deployment(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client, actor="dana")
    run(action.execute(run(action.plan(proposal(), ctx)), ctx))
    [event] = events(kube_client)
    assert event.reason == "HemostatRollback"
    assert (event.involved_object.kind, event.involved_object.name) == ("Deployment", APP)
    assert event.involved_object.uid == live(kube_api)["metadata"]["uid"]
    assert event.source.component == "hemostat"
    assert "revision 1" in event.message and "dana" in event.message


def test_revert_rolls_forward_to_the_recorded_template(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    outcome = run(action.revert(plan, ctx))
    assert outcome.ok and outcome.facts["changed"]
    assert image(kube_api) == "shop/app:2.0"
    assert sorted(e.reason for e in events(kube_client)) == ["HemostatRollback", "HemostatRollbackReverted"]
    assert run(action.revert(plan, ctx)).facts == {"changed": False}


def test_paused_deployment_is_refused(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    kubernetes.client.AppsV1Api(kube_client).patch_namespaced_deployment(APP, NS, {"spec": {"paused": True}})
    with pytest.raises(PermanentError, match="is paused: resume it first") as err:
        run(action.plan(proposal(), ctx_for(kube_client)))
    assert err.value.code == "rollback_paused"


def test_no_previous_revision_is_refused(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client, revisions=1)
    with pytest.raises(PermanentError) as err:
        run(action.plan(proposal(), ctx_for(kube_client)))
    assert str(err.value) == (f"deployment {NS}/{APP} has no previous revision to roll back to "
                              "(current revision 1)")
    assert err.value.code == "rollback_no_history"


def test_replica_sets_of_another_owner_are_ignored(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client, revisions=1)
    kube_api.seed({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "stranger", "namespace": NS, "labels": {"app": "web"},
                                "annotations": {REVISION: "0"}},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                            "template": deployment("evil/app:0")["spec"]["template"]}})
    with pytest.raises(PermanentError, match="has no previous revision"):
        run(action.plan(proposal(), ctx_for(kube_client)))


def test_dry_run_changes_nothing(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    version = live(kube_api)["metadata"]["resourceVersion"]
    outcome = run(action.dry_run(plan, ctx))
    assert outcome.ok and "dryRun=All" in outcome.detail
    assert live(kube_api)["metadata"]["resourceVersion"] == version
    assert image(kube_api) == "shop/app:2.0"
    assert any(m == "PATCH" and "dryRun=All" in p for m, p in kube_api.requests)
    assert events(kube_client) == []


def test_forbidden_patch_names_verb_resource_and_namespace(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", DEPLOY_PATH, 403)
    with pytest.raises(PermanentError) as err:
        run(action.execute(plan, ctx))
    assert str(err.value) == "forbidden: cannot patch deployments in namespace shop — grant it in the Role"
    assert image(kube_api) == "shop/app:2.0"


def test_conflict_is_retried_with_a_fresh_read(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", DEPLOY_PATH, 409, count=2)
    before = len(kube_api.requests)
    assert run(action.execute(plan, ctx)).facts["changed"]
    verbs = [m for m, p in kube_api.requests[before:] if p.startswith(DEPLOY_PATH)]
    assert verbs == ["GET", "PATCH"] * 3
    assert image(kube_api) == "shop/app:1.0"


def test_conflicts_give_up_after_three_attempts(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", DEPLOY_PATH, 409, count=3)
    with pytest.raises(TemporaryError) as err:
        run(action.execute(plan, ctx))
    assert err.value.code == "kube_conflict"


def test_a_stale_resource_version_is_a_real_conflict(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    """The patch carries the resourceVersion it read: a write in between makes the server say 409."""
    setup_cluster(kube_api, kube_client)
    stale = live(kube_api)
    kubernetes.client.AppsV1Api(kube_client).patch_namespaced_deployment(
        APP, NS, {"metadata": {"labels": {"team": "checkout"}}})
    from actions.rollback import _patch

    with pytest.raises(TemporaryError) as err:
        run(_patch(ctx_for(kube_client), stale, stale["spec"]["template"], dry_run=False))
    assert err.value.code == "kube_conflict"


def test_busy_apiserver_is_temporary_with_its_retry_after(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    """(PATCH: urllib3 itself retries a GET that answers 429 with a Retry-After.)"""
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    kube_api.fail_next("PATCH", DEPLOY_PATH, 429)
    with pytest.raises(TemporaryError) as err:
        run(action.execute(plan, ctx))
    assert err.value.delay == 1.0 and "HTTP 429" in str(err.value)


def test_missing_deployment_is_a_clear_not_found(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    with pytest.raises(PermanentError) as err:
        run(action.plan(proposal(), ctx_for(kube_client)))
    assert str(err.value) == "not found: deployments shop/app (get)"


def test_verify_waits_for_the_rollout_and_reprobes(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    probed: list[str] = []

    async def reprobe(target: TargetSpec, probe: str) -> list[Finding]:
        probed.append(probe)
        return []

    ctx = ctx_for(kube_client, reprobe=reprobe)
    plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    assert run(action.verify(plan, ctx)).ok
    assert probed == ["k8s-workload"]


def test_verify_fails_when_the_rollback_never_becomes_available(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)
    ctx = ctx_for(kube_client)
    plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    kube_api.set_deployment_unavailable(NS, APP, 1)
    outcome = run(action.verify(plan, ctx))
    assert not outcome.ok and "1 available" in outcome.detail


def test_verify_fails_when_the_findings_remain(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient, action: RollbackAction) -> None:
    setup_cluster(kube_api, kube_client)

    async def reprobe(target: TargetSpec, probe: str) -> list[Finding]:
        return [Finding("crash_loop", APP, Severity.SEV2, datetime.now(UTC), "3 containers crash", probe)]

    ctx = ctx_for(kube_client, reprobe=reprobe)
    plan: Plan = run(action.plan(proposal(), ctx))
    run(action.execute(plan, ctx))
    outcome = run(action.verify(plan, ctx))
    assert not outcome.ok and outcome.facts["findings"] == ["crash_loop"]
