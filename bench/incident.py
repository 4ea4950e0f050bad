"""The local incident every benchmark diagnoses: deploy repos, config files, tree and policy.

The bench brings its own small decision tree and policy that name only the `investigate`
action, so a benchmark never depends on which mitigations are registered at the moment (the
bundled tree names `rollback`, `scale-up`, ... which other work may not have landed yet).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from agent.diagnosis.registry import Registry

TREE = """\
version: 1
branches:
  - name: recent-deploy
    title: recent deployment
    all: [recent_deploy]
    any: [error_spike, crash_loop, replicas_unavailable]
    propose: [{action: investigate}]
  - name: otherwise
    title: no single cause
    any: [error_spike, crash_loop, dependency_down, dependency_slow, db_connections_saturated,
          long_running_queries, lock_contention]
    propose: [{action: investigate}]
"""
POLICY = """\
version: 1
mode: propose
actions:
  investigate: {approvals: 1}
"""


def write_tree_and_policy(workdir: Path) -> tuple[Path, Path]:
    tree, policy = workdir / "bench-tree.yaml", workdir / "bench-policy.yaml"
    tree.write_text(TREE)
    policy.write_text(POLICY)
    return tree, policy


def _git(repo: Path, *args: str, when: datetime | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dana Deployer", "GIT_AUTHOR_EMAIL": "dana@example.com",
           "GIT_COMMITTER_NAME": "Dana Deployer", "GIT_COMMITTER_EMAIL": "dana@example.com"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True, timeout=30)


def deploy_repo(repo: Path, minutes_ago: Iterable[float]) -> Path:
    """A deploy repo on branch main with one commit per age (oldest first) and a few old ones."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    now = datetime.now(UTC)
    ages = sorted([600.0, 480.0, 360.0, *minutes_ago], reverse=True)
    for i, age in enumerate(ages):
        (repo / "app.yaml").write_text(f"image: shop/app:v1.{i}.0\n")
        _git(repo, "add", "app.yaml")
        _git(repo, "commit", "-q", "-m", f"app: v1.{i}.0", when=now - timedelta(minutes=age))
    _git(repo, "tag", f"v1.{len(ages) - 1}.0")
    return repo


def write_config(workdir: Path, targets: list[dict[str, Any]], **extra: Any) -> Path:
    """hemostat.yaml with the bench tree and policy, a SQLite ledger in `workdir`."""
    tree, policy = write_tree_and_policy(workdir)
    config = {"store": {"path": str(workdir / "ledger.db")}, "tree": str(tree), "policy": str(policy),
              "notifiers": [], "targets": targets, **extra}
    path = workdir / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def registry() -> Registry:
    """Every installed plugin; if discovery fails mid-landing, the core probes and `investigate`."""
    try:
        return Registry.discover()
    except Exception:  # a plugin being written right now must not stop the benchmarks
        from actions.investigate import InvestigateAction
        from probes.app_metrics import AppMetricsProbe
        from probes.git_deploys import GitDeploysProbe
        from probes.http_health import HttpHealthProbe

        reg = Registry()
        for probe in (AppMetricsProbe(), GitDeploysProbe(), HttpHealthProbe()):
            reg.add_probe(probe)
        reg.add_action(InvestigateAction())
        return reg
