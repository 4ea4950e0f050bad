"""`rollback` on a target deployed from its git repo (`gitops: git-revert`), no cluster: the revert
is pushed to the deploy branch (or a review branch) and verified only by effect, so a revert that
leaves the errors where they were, or one still waiting for review, is not called a success."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.cli.demo_scene import make_deploy_repo
from agent.cli.main import cli
from agent.model import TargetSpec
from policies.model import bundled_policy_path
from tests.agent.daemon_harness import failing_metrics
from tests.loopback import LoopbackServer


def _config(tmp_path: Path, metrics_url: str, push: str) -> Path:
    policy = yaml.safe_load(bundled_policy_path("demo").read_text())
    policy["gitops"] = {"*": {"rollback": "git-revert", "push": push, "sync_timeout_s": 1}}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    make_deploy_repo(tmp_path / "deploys", datetime.now(UTC))
    config = {"store": {"path": "ledger.db"}, "policy": "policy.yaml",
              "targets": [{"name": "checkout", "gitops": "git-revert", "probes": ["git-deploys", "app-metrics"],
                           "deploy_repo": {"path": str(tmp_path / "deploys")},
                           "metrics": {"url": metrics_url, "scrape_interval_s": 0.05}}]}
    (tmp_path / "hemostat.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "hemostat.yaml"


def _execute(config: Path) -> tuple[dict[str, object], str]:
    run = CliRunner()
    out = run.invoke(cli, ["--config", str(config), "--user", "dana", "diagnose", "checkout", "--json"])
    assert out.exit_code == 3, out.output
    pid = json.loads(out.stdout)["proposals"][0]["id"]
    assert run.invoke(cli, ["--config", str(config), "--user", "sam", "approve", pid]).exit_code == 0
    done = run.invoke(cli, ["--config", str(config), "--user", "sam", "execute", pid, "--json"])
    assert done.exit_code == 1, done.output  # not a success
    return json.loads(done.stdout), pid


def _log(repo: Path, ref: str = "main") -> str:
    return subprocess.run(["git", "-C", str(repo), "log", ref, "--format=%s"], capture_output=True, text=True,
                          check=True).stdout


def test_a_revert_that_leaves_the_errors_is_not_verified(tmp_path: Path, loopback: LoopbackServer) -> None:
    config = _config(tmp_path, failing_metrics(loopback), "deploy-branch")  # fails whatever is deployed
    result, _ = _execute(config)
    assert result["state"] == "failed"
    assert "is on main, but still:" in str(result["detail"]) and "requests failing" in str(result["detail"])
    assert _log(tmp_path / "deploys").startswith('Revert "')  # it did push: the effect is what failed


def test_a_revert_waiting_for_review_is_not_verified(tmp_path: Path, loopback: LoopbackServer) -> None:
    config = _config(tmp_path, failing_metrics(loopback), "review")
    result, _ = _execute(config)
    assert result["state"] == "failed" and "waits for review on branch hemostat/revert-" in str(result["detail"])
    assert not _log(tmp_path / "deploys").startswith('Revert "')  # main untouched
    branches = subprocess.run(["git", "-C", str(tmp_path / "deploys"), "branch", "--list", "hemostat/*"],
                              capture_output=True, text=True, check=True).stdout
    assert "hemostat/revert-" in branches


def test_gitops_git_revert_needs_a_deploy_repo() -> None:
    with pytest.raises(ValueError, match="gitops: git-revert needs deploy_repo"):
        TargetSpec(name="checkout", gitops="git-revert")
