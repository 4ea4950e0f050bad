"""rollback under GitOps against the real control plane: our minimal Application/Rollout/
ScaledObject CRDs on the real apiserver, a real bare git remote, and the self-heal simulator
(tests/kubeapi/gitops.py's GitOpsController, talking to the real API through RealBackend)
applying the deploy repository to a Deployment the real controller rolls out. A live rollback
is visibly undone, Argo CD's rollback holds while auto-sync is suspended, and a git revert holds.
Scale-up of a KEDA-scaled target raises the ScaledObject, not the HPA KEDA owns."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from actions.rollback import RollbackAction
from actions.scale_up import ScaleUpAction
from agent.model import DeployRepoSpec, PermanentError, Proposal, TargetSpec
from agent.model.context import ActionContext
from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S
from tests.cluster.gitops_real import RealBackend, install_crds
from tests.cluster.kube import create, proposal, wait_rolled_out, workload
from tests.kubeapi.gitops import GitOpsController, git

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]
APP, ARGOCD = "checkout", "argocd"
ENV = {"GIT_AUTHOR_NAME": "Dana", "GIT_AUTHOR_EMAIL": "d@example.com",
       "GIT_COMMITTER_NAME": "Dana", "GIT_COMMITTER_EMAIL": "d@example.com"}
Client = kubernetes.client.ApiClient


def manifest(image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
                     "template": {"metadata": {"labels": {"app": APP}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


@dataclass
class GitOps:
    backend: RealBackend
    client: Client
    controller: GitOpsController
    ns: str
    app_name: str
    bare: Path
    work: Path
    good: str = ""
    bad: str = ""

    def deploy(self, image: str, message: str) -> str:
        (self.work / "apps" / APP / "deployment.yaml").write_text(yaml.safe_dump(manifest(image)))
        subprocess.run(["git", "-C", str(self.work), "commit", "-qam", message], check=True, env=ENV)
        subprocess.run(["git", "-C", str(self.work), "push", "-q", "origin", "main"], check=True)
        return git(str(self.work), "rev-parse", "HEAD")

    def image(self) -> str:
        deploy = self.backend.get_object("apps/v1", "deployments", self.ns, APP)
        assert deploy is not None
        return str(deploy["spec"]["template"]["spec"]["containers"][0]["image"])

    def app(self) -> dict[str, Any]:
        app = self.backend.get_object("argoproj.io/v1alpha1", "applications", ARGOCD, self.app_name)
        assert app is not None
        return app

    def ctx(self, **rule: Any) -> ActionContext:
        target = TargetSpec(name=APP, namespace=self.ns, deployment=APP, deploy_repo=DeployRepoSpec(path=self.work))
        return ActionContext(target=target, kube=lambda: self.client,
                             limits={f"gitops_{k}": v for k, v in rule.items()})


@pytest.fixture
def gitops(admin_client: Client, ns: str, tmp_path: Path) -> Iterator[GitOps]:
    install_crds(admin_client)
    core = kubernetes.client.CoreV1Api(admin_client)
    if not core.list_namespace(field_selector=f"metadata.name={ARGOCD}").items:
        core.create_namespace({"metadata": {"name": ARGOCD}})
    bare, work = tmp_path / "deploys.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    (work / "apps" / APP).mkdir(parents=True)
    (work / "apps" / APP / "deployment.yaml").write_text(yaml.safe_dump(manifest("shop/checkout:1.0")))
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "checkout 1.0"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True)
    backend = RealBackend(admin_client)
    setup = GitOps(backend, admin_client, GitOpsController(backend, interval_s=0.2),  # type: ignore[arg-type]
                   ns, f"checkout-{secrets.token_hex(3)}", bare, work, good=git(str(work), "rev-parse", "HEAD"))
    kubernetes.client.CustomObjectsApi(admin_client).create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD, "applications", {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": setup.app_name},
            "spec": {"source": {"repoURL": str(bare), "path": f"apps/{APP}", "targetRevision": "main"},
                     "destination": {"namespace": ns},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}})
    setup.controller.reconcile()
    wait_rolled_out(admin_client, "Deployment", ns, APP)
    setup.bad = setup.deploy("shop/checkout:2.0", "checkout 2.0")
    setup.controller.reconcile()
    wait_rolled_out(admin_client, "Deployment", ns, APP)
    assert setup.image() == "shop/checkout:2.0"
    yield setup
    setup.controller.stop()
    kubernetes.client.CustomObjectsApi(admin_client).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD, "applications", setup.app_name)


def rollback_proposal() -> Proposal:
    return Proposal(id="p-gitops", target=APP, action="rollback", subject=APP, params={}, path=(),
                    reason="deploy 2.0 before the error spike", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


ACTION = RollbackAction(poll_interval_s=0.25, verify_timeout_s=60)


def test_self_heal_undoes_a_live_edit_and_hemostat_refuses_a_live_rollback(gitops: GitOps) -> None:
    kubernetes.client.AppsV1Api(gitops.client).patch_namespaced_deployment(APP, gitops.ns, {"spec": {
        "template": {"spec": {"containers": [{"name": "app", "image": "shop/checkout:1.0"}]}}}})
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"
    with pytest.raises(PermanentError) as refused:
        run(ACTION.plan(rollback_proposal(), gitops.ctx(rollback="live")))
    assert refused.value.code == "gitops_refused"
    assert f"managed by Argo CD app argocd/{gitops.app_name}, auto-sync with self-heal" in str(refused.value)


def test_argocd_rollback_holds_while_sync_is_suspended_and_revert_restores_it(gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="argocd", may_suspend_sync=True, sync_timeout_s=60)
    plan = run(ACTION.plan(rollback_proposal(), ctx))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (gitops.bad, gitops.good)
    assert run(ACTION.execute(plan, ctx)).ok
    gitops.controller.start()
    try:
        verified = run(ACTION.verify(plan, ctx))
    finally:
        gitops.controller.stop()
    assert verified.ok, verified.detail
    assert gitops.image() == "shop/checkout:1.0"
    assert run(ACTION.revert(plan, ctx)).ok
    assert gitops.app()["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"


def test_git_revert_holds_against_self_heal(gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="git-revert", push="deploy-branch", sync_timeout_s=60)
    plan = run(ACTION.plan(rollback_proposal(), ctx))
    assert plan.state["commits"] == [gitops.bad]
    revert = run(ACTION.execute(plan, ctx)).facts["revert"]
    gitops.controller.start()
    try:
        verified = run(ACTION.verify(plan, ctx))
    finally:
        gitops.controller.stop()
    assert verified.ok, verified.detail
    assert gitops.image() == "shop/checkout:1.0"
    assert gitops.app()["status"]["sync"] == {"status": "Synced", "revision": revert}
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"  # self-heal keeps the reverted state


def test_scale_up_of_a_keda_target_raises_the_scaled_object(admin_client: Client, ns: str) -> None:
    install_crds(admin_client)
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=2))
    kubernetes.client.CustomObjectsApi(admin_client).create_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects", {
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 2, "maxReplicaCount": 4}})
    # the HPA KEDA would create for it: owned by the ScaledObject, with KEDA's label
    scaled = kubernetes.client.CustomObjectsApi(admin_client).get_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects", "web")
    kubernetes.client.AutoscalingV2Api(admin_client).create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "keda-hpa-web", "labels": {"scaledobject.keda.sh/name": "web"}, "ownerReferences": [{
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web",
            "uid": scaled["metadata"]["uid"], "controller": True}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 4}})
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    ctx = ActionContext(target=TargetSpec(name="web", namespace=ns, deployment="web"), kube=lambda: admin_client)
    action = ScaleUpAction(poll_interval_s=0.25, verify_timeout_s=60)
    plan = run(action.plan(proposal("scale-up", "web", factor=2), ctx))
    assert plan.state["mode"] == "keda" and plan.touches == (f"scaledobject {ns}/web",)
    assert run(action.execute(plan, ctx)).facts["changed"]
    live = kubernetes.client.CustomObjectsApi(admin_client).get_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects", "web")
    assert (live["spec"]["minReplicaCount"], live["spec"]["maxReplicaCount"]) == (4, 4)
    hpa = kubernetes.client.AutoscalingV2Api(admin_client).read_namespaced_horizontal_pod_autoscaler("keda-hpa-web", ns)
    assert hpa.spec.min_replicas == 2  # KEDA's HPA is left to KEDA
    assert run(action.revert(plan, ctx)).ok
    live = kubernetes.client.CustomObjectsApi(admin_client).get_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects", "web")
    assert (live["spec"]["minReplicaCount"], live["spec"]["maxReplicaCount"]) == (2, 4)
