"""rollback against the real control plane: the real Deployment controller re-uses the old
ReplicaSet and renumbers it, `to_revision` picks an older one, a stuck rollout is undone and
verified through the real k8s-workload probe, StatefulSets and DaemonSets roll back through the
ControllerRevisions their real controllers write, and dry-run/revert behave on real objects."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
import pytest

from actions.rollback import RollbackAction
from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S
from tests.cluster.kube import (
    action_ctx,
    create,
    eventually,
    probe_now,
    proposal,
    read,
    run,
    set_image,
    target,
    wait_rolled_out,
    workload,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]
REVISION = "deployment.kubernetes.io/revision"
ACTION = RollbackAction(poll_interval_s=0.25, verify_timeout_s=60)
Client = kubernetes.client.ApiClient


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def replicasets(client: Client, ns: str, app: str) -> dict[str, dict[str, Any]]:
    """ReplicaSet name -> (revision, image, replicas) as the real controller left them."""
    raw = kubernetes.client.AppsV1Api(client).list_namespaced_replica_set(
        ns, label_selector=f"app={app}", _preload_content=False)
    return {rs["metadata"]["name"]: {"revision": rs["metadata"]["annotations"][REVISION],
                                     "image": image_of(rs), "replicas": rs["spec"]["replicas"]}
            for rs in json.loads(raw.data)["items"]}


def deployment_with_history(client: Client, ns: str, images: list[str]) -> None:
    create(client, ns, workload("Deployment", "web", images[0], replicas=2))
    wait_rolled_out(client, "Deployment", ns, "web")
    for image in images[1:]:
        set_image(client, "Deployment", ns, "web", image)
        wait_rolled_out(client, "Deployment", ns, "web")


def test_rollback_reuses_the_old_replicaset_and_the_controller_renumbers_it(admin_client: Client, ns: str) -> None:
    deployment_with_history(admin_client, ns, ["shop/web:1.0", "shop/web:2.0"])
    before = replicasets(admin_client, ns, "web")
    ctx = action_ctx(target(ns, "web"), admin_client, actor="dana")
    plan = run(ACTION.plan(proposal("rollback", "web"), ctx))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (2, 1)
    assert {c.field: (c.before, c.after) for c in plan.changes} == {
        "containers[app].image": ("shop/web:2.0", "shop/web:1.0")}

    outcome = run(ACTION.execute(plan, ctx))
    assert outcome.ok and outcome.facts == {"changed": True}
    verified = run(ACTION.verify(plan, ctx))
    assert verified.ok, verified.detail

    after = replicasets(admin_client, ns, "web")
    assert after.keys() == before.keys()  # no third ReplicaSet: revision 1's was re-used
    old = next(name for name, rs in before.items() if rs["image"] == "shop/web:1.0")
    assert after[old] == {"revision": "3", "image": "shop/web:1.0", "replicas": 2}
    deploy = read(admin_client, "Deployment", ns, "web")
    assert deploy["metadata"]["annotations"][REVISION] == "3"
    [event] = kubernetes.client.CoreV1Api(admin_client).list_namespaced_event(
        ns, field_selector="reason=HemostatRollback").items
    assert event.involved_object.uid == deploy["metadata"]["uid"] and "dana" in event.message


def test_to_revision_rolls_back_two_steps_and_a_second_execute_changes_nothing(
        admin_client: Client, ns: str) -> None:
    deployment_with_history(admin_client, ns, ["shop/web:1.0", "shop/web:2.0", "shop/web:3.0"])
    ctx = action_ctx(target(ns, "web"), admin_client)
    plan = run(ACTION.plan(proposal("rollback", "web", to_revision=1), ctx))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (3, 1)
    assert run(ACTION.execute(plan, ctx)).facts == {"changed": True}
    generation = read(admin_client, "Deployment", ns, "web")["metadata"]["generation"]
    assert run(ACTION.execute(plan, ctx)).facts == {"changed": False}
    # no second write of the spec (the controller's status writes move resourceVersion meanwhile)
    assert read(admin_client, "Deployment", ns, "web")["metadata"]["generation"] == generation
    assert run(ACTION.verify(plan, ctx)).ok
    assert image_of(read(admin_client, "Deployment", ns, "web")) == "shop/web:1.0"
    revisions = {rs["image"]: rs["revision"] for rs in replicasets(admin_client, ns, "web").values()}
    assert revisions == {"shop/web:1.0": "4", "shop/web:2.0": "2", "shop/web:3.0": "3"}


def test_dry_run_is_accepted_by_the_apiserver_and_changes_nothing(admin_client: Client, ns: str) -> None:
    deployment_with_history(admin_client, ns, ["shop/web:1.0", "shop/web:2.0"])
    ctx = action_ctx(target(ns, "web"), admin_client)
    plan = run(ACTION.plan(proposal("rollback", "web"), ctx))
    version = read(admin_client, "Deployment", ns, "web")["metadata"]["resourceVersion"]
    outcome = run(ACTION.dry_run(plan, ctx))
    assert outcome.ok and "dryRun=All" in outcome.detail
    deploy = read(admin_client, "Deployment", ns, "web")
    assert (deploy["metadata"]["resourceVersion"], image_of(deploy)) == (version, "shop/web:2.0")


def test_a_stuck_rollout_is_diagnosed_rolled_back_and_verified(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=2, progressDeadlineSeconds=2))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    # 2.0 asks for more memory than any node has: its pod stays Pending, the rollout stalls
    set_image(admin_client, "Deployment", ns, "web", "shop/web:2.0",
              resources={"requests": {"cpu": "50m", "memory": "64Gi"}})
    spec = target(ns, "web")
    found = eventually(lambda: (f := probe_now(spec, admin_client)) and "rollout_stuck" in f and f,
                       60, "rollout_stuck from the k8s-workload probe")
    assert "pods_pending" in found and "Insufficient memory" in json.dumps(found["pods_pending"].evidence)

    ctx = action_ctx(spec, admin_client)
    plan = run(ACTION.plan(proposal("rollback", "web"), ctx))
    assert plan.state["to_revision"] == 1
    assert run(ACTION.execute(plan, ctx)).ok
    verified = run(ACTION.verify(plan, ctx))
    assert verified.ok, verified.detail
    assert not {"rollout_stuck", "pods_pending", "replicas_unavailable"} & probe_now(spec, admin_client).keys()


def test_verify_fails_when_the_rolled_back_template_cannot_run_and_revert_restores(
        admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=1, progressDeadlineSeconds=2))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    set_image(admin_client, "Deployment", ns, "web", "shop/web:1.0",
              resources={"requests": {"cpu": "50m", "memory": "64Gi"}})  # revision 2 cannot schedule
    set_image(admin_client, "Deployment", ns, "web", "shop/web:3.0",
              resources={"requests": {"cpu": "50m", "memory": "64Mi"}})
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    ctx = action_ctx(target(ns, "web"), admin_client)
    plan = run(ACTION.plan(proposal("rollback", "web"), ctx))
    assert plan.state["to_revision"] == 2
    run(ACTION.execute(plan, ctx))
    verified = run(RollbackAction(poll_interval_s=0.25, verify_timeout_s=8).verify(plan, ctx))
    assert not verified.ok and verified.detail.startswith("rollout not available"), verified.detail

    reverted = run(ACTION.revert(plan, ctx))
    assert reverted.ok and reverted.facts["changed"]
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    assert image_of(read(admin_client, "Deployment", ns, "web")) == "shop/web:3.0"


def test_a_paused_deployment_is_refused(admin_client: Client, ns: str) -> None:
    deployment_with_history(admin_client, ns, ["shop/web:1.0", "shop/web:2.0"])
    kubernetes.client.AppsV1Api(admin_client).patch_namespaced_deployment("web", ns, {"spec": {"paused": True}})
    with pytest.raises(Exception, match="is paused") as err:
        run(ACTION.plan(proposal("rollback", "web"), action_ctx(target(ns, "web"), admin_client)))
    assert getattr(err.value, "code", "") == "rollback_paused"


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_controller_revisions_roll_back_and_revert(admin_client: Client, ns: str, kind: str) -> None:
    create(admin_client, ns, workload(kind, "db", "shop/db:1.0", replicas=2))
    wait_rolled_out(admin_client, kind, ns, "db")
    set_image(admin_client, kind, ns, "db", "shop/db:2.0")
    wait_rolled_out(admin_client, kind, ns, "db")
    raw = kubernetes.client.AppsV1Api(admin_client).list_namespaced_controller_revision(
        ns, _preload_content=False)
    assert sorted(r["revision"] for r in json.loads(raw.data)["items"]) == [1, 2]  # the real controller's

    ctx = action_ctx(target(ns, "db", kind=kind), admin_client)
    plan = run(ACTION.plan(proposal("rollback", "db"), ctx))
    assert (plan.state["kind"], plan.state["from_revision"], plan.state["to_revision"]) == (kind, 2, 1)
    assert run(ACTION.execute(plan, ctx)).facts["changed"]
    verified = run(ACTION.verify(plan, ctx))
    assert verified.ok, verified.detail
    assert image_of(read(admin_client, kind, ns, "db")) == "shop/db:1.0"
    pods = kubernetes.client.CoreV1Api(admin_client).list_namespaced_pod(ns, label_selector="app=db").items
    assert pods and {p.spec.containers[0].image for p in pods} == {"shop/db:1.0"}

    assert run(ACTION.revert(plan, ctx)).ok
    wait_rolled_out(admin_client, kind, ns, "db")
    assert image_of(read(admin_client, kind, ns, "db")) == "shop/db:2.0"
