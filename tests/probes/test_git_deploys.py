"""git-deploys: real repositories, commits at chosen times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.model import DeployRepoSpec, Observation, PermanentError, TargetSpec
from agent.model.context import ProbeContext
from probes.git_deploys import GitDeploysProbe
from tests.conftest import git_commit

NOW = datetime(2026, 11, 27, 2, 55, tzinfo=UTC)


def _target(repo: Path, **repo_kw: object) -> TargetSpec:
    return TargetSpec(name="checkout", deployment="checkout",
                      deploy_repo=DeployRepoSpec(path=repo, **repo_kw))  # type: ignore[arg-type]


def _run(target: TargetSpec) -> Observation:
    probe = GitDeploysProbe()
    data = asyncio.run(probe.collect(target, ProbeContext(now=lambda: NOW)))
    return Observation(probe.name, target.name, NOW, data)


def test_deploy_minutes_before_the_incident_is_a_recent_deploy(deploy_repo: Path) -> None:
    git_commit(deploy_repo, "checkout v1.7", NOW - timedelta(hours=2))
    sha = git_commit(deploy_repo, "checkout v1.8 new payment flow", NOW - timedelta(minutes=4))
    target = _target(deploy_repo)
    [finding] = GitDeploysProbe().analyze(_run(target), target, NOW)
    assert finding.kind == "recent_deploy" and finding.subject == "checkout"
    assert finding.facts["sha"] == sha and finding.facts["minutes_before"] == 4.0
    assert f"deploy {sha[:7]} (checkout v1.8 new payment flow)" in finding.summary
    assert "02:51" in finding.summary and "4 min before" in finding.summary


def test_old_deploys_only_are_not_a_finding(deploy_repo: Path) -> None:
    git_commit(deploy_repo, "checkout v1.7", NOW - timedelta(hours=2))
    target = _target(deploy_repo)
    obs = _run(target)
    assert [c["subject"] for c in obs.data["commits"]] == ["checkout v1.7"]
    assert GitDeploysProbe().analyze(obs, target, NOW) == []


def test_commits_outside_the_window_and_after_max_are_not_read(deploy_repo: Path) -> None:
    for i in range(5):
        git_commit(deploy_repo, f"deploy {i}", NOW - timedelta(minutes=50 - i))
    obs = _run(_target(deploy_repo, max_commits=3))
    assert [c["subject"] for c in obs.data["commits"]] == ["deploy 4", "deploy 3", "deploy 2"]


def test_tags_and_authors_are_reported(deploy_repo: Path) -> None:
    import subprocess

    git_commit(deploy_repo, "release", NOW - timedelta(minutes=3), author="Sam Shipper")
    subprocess.run(["git", "-C", str(deploy_repo), "tag", "v2.0.0"], check=True)
    [commit] = _run(_target(deploy_repo)).data["commits"]
    assert commit["author"] == "Sam Shipper" and commit["tags"] == ["v2.0.0"]


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="is not a git repository"):
        _run(_target(tmp_path))


def test_unknown_branch_is_a_clear_error(deploy_repo: Path) -> None:
    git_commit(deploy_repo, "x", NOW)
    with pytest.raises(PermanentError, match="branch 'release' not found"):
        _run(_target(deploy_repo, branch="release"))


def test_each_recent_deploy_is_a_finding_with_its_time_and_files(deploy_repo: Path) -> None:
    git_commit(deploy_repo, "checkout v1.8", NOW - timedelta(minutes=9), file="app.yaml")
    git_commit(deploy_repo, "docs: runbook", NOW - timedelta(minutes=2), file="README.md")
    target = _target(deploy_repo)
    docs, code = GitDeploysProbe().analyze(_run(target), target, NOW)
    assert (docs.onset, docs.facts["files"], docs.facts["docs_only"]) == (NOW - timedelta(minutes=2),
                                                                         ["README.md"], True)
    assert (code.onset, code.facts["files"], code.facts["docs_only"]) == (NOW - timedelta(minutes=9),
                                                                         ["app.yaml"], False)
    assert code.onset_from == "commit time on the deploy branch"
