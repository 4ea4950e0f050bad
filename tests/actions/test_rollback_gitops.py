"""rollback under GitOps: a real bare git remote, Argo CD's self-heal played against the fake apiserver.

The GitOps controller (tests/kubeapi/gitops.py) re-applies the deploy repository's state, so a
live rollback is visibly undone, a git revert visibly holds, and Argo CD's own rollback holds
only while auto-sync is suspended.
"""

from __future__ import annotations

import asyncio
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
from agent.model import DeployRepoSpec, PermanentError, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext
from tests.kubeapi.gitops import GitOpsController, git, register_gitops_crds
from tests.kubeapi.server import FakeApiServer

NS, APP, ARGOCD = "shop", "checkout", "argocd"
ENV = {"GIT_AUTHOR_NAME": "Dana", "GIT_AUTHOR_EMAIL": "d@example.com",
       "GIT_COMMITTER_NAME": "Dana", "GIT_COMMITTER_EMAIL": "d@example.com"}


def manifest(image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
                     "template": {"metadata": {"labels": {"app": APP}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


@dataclass
class GitOps:
    fake: FakeApiServer
    client: kubernetes.client.ApiClient
    controller: GitOpsController
    bare: Path
    work: Path
    good: str
    bad: str

    def deploy(self, image: str, message: str) -> str:
        (self.work / "apps" / APP / "deployment.yaml").write_text(yaml.safe_dump(manifest(image)))
        subprocess.run(["git", "-C", str(self.work), "commit", "-qam", message], check=True, env=ENV)
        subprocess.run(["git", "-C", str(self.work), "push", "-q", "origin", "main"], check=True)
        return git(str(self.work), "rev-parse", "HEAD")

    def image(self) -> str:
        deploy = self.fake.get_object("apps/v1", "deployments", NS, APP)
        assert deploy is not None
        return str(deploy["spec"]["template"]["spec"]["containers"][0]["image"])

    def app(self) -> dict[str, Any]:
        app = self.fake.get_object("argoproj.io/v1alpha1", "applications", ARGOCD, APP)
        assert app is not None
        return app

    def ctx(self, **rule: Any) -> ActionContext:
        target = TargetSpec(name=APP, namespace=NS, deployment=APP,
                            deploy_repo=DeployRepoSpec(path=self.work))
        limits = {f"gitops_{k}": v for k, v in rule.items()}
        return ActionContext(target=target, kube=lambda: self.client, limits=limits)


@pytest.fixture
def gitops(fake_api: FakeApiServer, kube_client: kubernetes.client.ApiClient,
           tmp_path: Path) -> Iterator[GitOps]:
    register_gitops_crds(fake_api)
    for ns in (NS, ARGOCD):
        fake_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    bare, work = tmp_path / "deploys.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    (work / "apps" / APP).mkdir(parents=True)
    (work / "apps" / APP / "deployment.yaml").write_text(yaml.safe_dump(manifest("shop/checkout:1.0")))
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    setup = GitOps(fake_api, kube_client, GitOpsController(fake_api), bare, work, "", "")
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "checkout 1.0"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True)
    setup.good = git(str(work), "rev-parse", "HEAD")
    fake_api.seed({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": APP, "namespace": ARGOCD},
                   "spec": {"source": {"repoURL": str(bare), "path": f"apps/{APP}", "targetRevision": "main"},
                            "destination": {"namespace": NS},
                            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}})
    setup.controller.reconcile()
    setup.bad = setup.deploy("shop/checkout:2.0", "checkout 2.0")
    setup.controller.reconcile()
    assert setup.image() == "shop/checkout:2.0"
    yield setup
    setup.controller.stop()


def proposal() -> Proposal:
    return Proposal(id="p-gitops", target=APP, action="rollback", subject=APP, params={}, path=(),
                    reason="deploy 2.0 before the error spike", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def action() -> RollbackAction:
    return RollbackAction(poll_interval_s=0.01, verify_timeout_s=0.05)


def verify_while_the_controller_runs(gitops: GitOps, plan: Plan, ctx: ActionContext) -> None:
    gitops.controller.start()
    verified = run(action().verify(plan, ctx))
    gitops.controller.stop()
    assert verified.ok, verified.detail


def test_self_heal_undoes_a_live_rollback(gitops: GitOps) -> None:
    apps = kubernetes.client.AppsV1Api(gitops.client)
    apps.patch_namespaced_deployment(APP, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "shop/checkout:1.0"}]}}}})
    assert gitops.image() == "shop/checkout:1.0"
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"


@pytest.mark.parametrize("rule", [{"rollback": "refuse"}, {"rollback": "live"},
                                  {"rollback": "live", "live_allowed": True},
                                  {"rollback": "argocd"}])
def test_live_rollback_on_a_self_healed_app_is_refused_without_leave_to_suspend_sync(
        gitops: GitOps, rule: dict[str, Any]) -> None:
    with pytest.raises(PermanentError) as refused:
        run(action().plan(proposal(), gitops.ctx(**rule)))
    assert refused.value.code == "gitops_refused"
    assert "managed by Argo CD app argocd/checkout, auto-sync with self-heal" in str(refused.value)
    assert gitops.image() == "shop/checkout:2.0"


def test_allowed_live_rollback_suspends_auto_sync_first_so_it_holds(gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="live", live_allowed=True, may_suspend_sync=True)
    plan = run(action().plan(proposal(), ctx))
    assert plan.summary.startswith("suspend auto-sync (checkout is managed by Argo CD")
    outcome = run(action().execute(plan, ctx))
    assert outcome.ok and outcome.facts["sync_suspended"] is True
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"
    assert "automated" not in gitops.app()["spec"]["syncPolicy"]
    assert run(action().revert(plan, ctx)).ok
    assert gitops.app()["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"


def test_git_revert_holds_after_sync_and_verifies_healthy_and_revert_restores_the_commit(
        gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="git-revert", push="deploy-branch", sync_timeout_s=30)
    plan = run(action().plan(proposal(), ctx))
    assert plan.state["commits"] == [gitops.bad]
    assert run(action().dry_run(plan, ctx)).ok and git(str(gitops.bare), "rev-parse", "main") == gitops.bad
    outcome = run(action().execute(plan, ctx))
    revert = outcome.facts["revert"]
    assert git(str(gitops.bare), "rev-parse", "main") == revert
    assert run(action().execute(plan, ctx)).facts["changed"] is False  # idempotent
    gitops.controller.start()
    verified = run(action().verify(plan, ctx))
    assert verified.ok, verified.detail
    assert gitops.image() == "shop/checkout:1.0"
    assert gitops.app()["status"]["sync"] == {"status": "Synced", "revision": revert}
    gitops.controller.stop()
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"  # self-heal keeps the reverted state
    assert run(action().revert(plan, ctx)).ok
    assert git(str(gitops.bare), "log", "-1", "--format=%s", "main").startswith("Undo Hemostat rollback")
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"


def test_git_revert_for_review_pushes_a_branch_and_waits_for_the_merge(gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="git-revert", push="review", sync_timeout_s=1)
    plan = run(action().plan(proposal(), ctx))
    run(action().execute(plan, ctx))
    branch = plan.state["push_to"]
    assert branch.startswith("hemostat/revert-") and git(str(gitops.bare), "rev-parse", "main") == gitops.bad
    verified = run(action().verify(plan, ctx))
    assert not verified.ok and verified.facts == {"pending_review": True}
    assert run(action().revert(plan, ctx)).detail == f"deleted the unmerged review branch {branch}"


def test_argocd_rollback_suspends_sync_syncs_the_previous_revision_and_revert_restores_sync(
        gitops: GitOps) -> None:
    ctx = gitops.ctx(rollback="argocd", may_suspend_sync=True, sync_timeout_s=30)
    plan = run(action().plan(proposal(), ctx))
    assert (plan.state["from_revision"], plan.state["to_revision"]) == (gitops.bad, gitops.good)
    assert run(action().execute(plan, ctx)).ok
    verify_while_the_controller_runs(gitops, plan, ctx)
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"
    assert run(action().revert(plan, ctx)).ok
    assert gitops.app()["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"
    assert gitops.app()["status"]["sync"]["revision"] == gitops.bad


def test_flux_self_heals_a_live_edit_and_a_git_revert_holds(gitops: GitOps) -> None:
    """The same, with Flux: a Kustomization over a GitRepository reconciles the bare repo."""
    gitops.fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
    app = gitops.app()
    app["spec"]["syncPolicy"] = {}  # Argo CD lets go; Flux takes over the same manifests
    gitops.fake.put_custom(app)
    gitops.fake.seed({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                      "metadata": {"name": "deploys", "namespace": "flux-system"},
                      "spec": {"url": str(gitops.bare), "ref": {"branch": "main"}}})
    gitops.fake.seed({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                      "metadata": {"name": "apps", "namespace": "flux-system"},
                      "spec": {"sourceRef": {"kind": "GitRepository", "name": "deploys"},
                               "path": f"apps/{APP}", "targetNamespace": NS, "interval": "1m"}})
    deploy = gitops.fake.get_object("apps/v1", "deployments", NS, APP) or {}
    deploy["metadata"]["annotations"].pop("argocd.argoproj.io/tracking-id")
    gitops.fake.seed(deploy)
    gitops.controller.reconcile()
    kubernetes.client.AppsV1Api(gitops.client).patch_namespaced_deployment(
        APP, NS, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop/checkout:1.0"}]}}}})
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:2.0"  # drift corrected
    ctx = gitops.ctx(rollback="git-revert", push="deploy-branch", sync_timeout_s=30)
    # Flux keeps no sync history: the commit to revert is the one the evidence names (the
    # preview puts the recent_deploy finding's sha in `commits`), never the branch's head.
    named = Proposal(**{**proposal().__dict__, "params": {"commits": [gitops.bad]}})
    plan = run(action().plan(named, ctx))
    assert plan.state["gitops"]["kind"] == "Kustomization" and plan.state["commits"] == [gitops.bad]
    run(action().execute(plan, ctx))
    verify_while_the_controller_runs(gitops, plan, ctx)
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"
