"""git-revert reverts the commit the evidence names, on a branch that moved on, and verify checks
the live image, not only "synced and healthy". A real bare remote, a real clone, and the GitOps
controller of tests/kubeapi/gitops.py syncing it into the test apiserver.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import kubernetes.client
import pytest

from agent.model import PermanentError
from agent.model.context import ActionContext
from tests.actions.test_rollback_gitops import APP, ENV, NS, GitOps, action, proposal, run
from tests.kubeapi.gitops import git


def commit_readme(g: GitOps) -> str:
    (g.work / "README.md").write_text("how we deploy\n")
    subprocess.run(["git", "-C", str(g.work), "add", "README.md"], check=True)
    subprocess.run(["git", "-C", str(g.work), "commit", "-qm", "docs: README"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(g.work), "push", "-q", "origin", "main"], check=True)
    return git(str(g.work), "rev-parse", "HEAD")


def ctx_for(g: GitOps) -> ActionContext:
    ctx = g.ctx(rollback="git-revert", push="deploy-branch", sync_timeout_s=30)
    return replace(ctx, provenance={"incident": "inc-7", "proposal": "p-gitops", "approvers": ["dana", "lee"]})


def test_a_branch_that_moved_on_gets_the_named_commit_reverted_on_top_not_head(gitops: GitOps) -> None:
    readme = commit_readme(gitops)  # lands after approval: the branch's head is now a docs change
    gitops.controller.reconcile()
    ctx = ctx_for(gitops)
    plan = run(action().plan(replace(proposal(), params={"commits": [gitops.bad]}), ctx))
    assert plan.state["commits"] == [gitops.bad]
    assert plan.state["images_gone"] == ["shop/checkout:2.0"]
    assert plan.state["images_back"] == ["shop/checkout:1.0"]
    revert = run(action().execute(plan, ctx)).facts["revert"]
    bare = str(gitops.bare)
    assert git(bare, "rev-parse", f"{revert}^") == readme  # on top of the moved branch
    assert git(bare, "diff", "--name-only", f"{revert}^", revert) == f"apps/{APP}/deployment.yaml"
    assert git(bare, "show", f"{revert}:README.md") == "how we deploy"  # the docs change stays
    body = git(bare, "log", "-1", "--format=%B", revert)
    assert body.startswith('Revert "checkout 2.0" (Hemostat rollback)')
    for words in ("Incident: inc-7", "Proposal: p-gitops", "Approved-by: dana, lee",
                  f"Hemostat-Revert-Of: {gitops.bad}"):
        assert words in body
    gitops.controller.start()
    verified = run(action().verify(plan, ctx))
    gitops.controller.stop()
    assert verified.ok, verified.detail
    assert gitops.image() == "shop/checkout:1.0"
    assert "runs shop/checkout:1.0" in verified.detail


def test_a_later_hotfix_on_the_same_line_makes_it_refuse_with_one_sentence(gitops: GitOps) -> None:
    hotfix = gitops.deploy("shop/checkout:2.0.1", "hotfix: checkout 2.0.1")
    ctx = ctx_for(gitops)
    plan = run(action().plan(replace(proposal(), params={"commits": [gitops.bad]}), ctx))
    with pytest.raises(PermanentError) as refused:
        run(action().execute(plan, ctx))
    assert refused.value.code == "git_revert_overwritten"
    assert str(refused.value) == (
        f'not reverting {gitops.bad[:7]} ("checkout 2.0"): the later commit {hotfix[:7]} hotfix: '
        f"checkout 2.0.1 changed the same lines of apps/{APP}/deployment.yaml; a revert would undo it too")
    assert git(str(gitops.bare), "rev-parse", "main") == hotfix  # nothing pushed


def test_a_commit_not_on_the_branch_is_refused(gitops: GitOps) -> None:
    ctx = ctx_for(gitops)
    with pytest.raises(PermanentError) as refused:
        run(action().plan(replace(proposal(), params={"commits": ["0" * 40]}), ctx))
    assert refused.value.code == "git_revert_not_on_branch"
    assert str(refused.value) == "not reverting 0000000: it is not on branch main"


def test_without_a_named_commit_or_sync_history_it_refuses_instead_of_reverting_head(
        gitops: GitOps) -> None:
    app = gitops.app()
    app["status"].pop("history", None)
    gitops.fake.put_custom(app)
    with pytest.raises(PermanentError) as refused:
        run(action().plan(proposal(), ctx_for(gitops)))
    assert refused.value.code == "git_revert_unnamed"


def test_synced_and_healthy_is_not_verified_while_the_bad_image_is_live(gitops: GitOps) -> None:
    app = gitops.app()
    app["spec"]["syncPolicy"]["automated"] = {"prune": True}  # syncs commits, leaves drift alone
    gitops.fake.put_custom(app)
    ctx = ctx_for(gitops)
    plan = run(action().plan(replace(proposal(), params={"commits": [gitops.bad]}), ctx))
    run(action().execute(plan, ctx))
    gitops.controller.reconcile()
    assert gitops.image() == "shop/checkout:1.0"
    kubernetes.client.AppsV1Api(gitops.client).patch_namespaced_deployment(  # someone puts 2.0 back
        APP, NS, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop/checkout:2.0"}]}}}})
    verified = run(action().verify(plan, ctx))
    assert not verified.ok
    assert verified.facts["effect"] == "missing"
    assert "still runs shop/checkout:2.0" in verified.detail
