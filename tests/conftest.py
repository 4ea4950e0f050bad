"""Shared fixtures for real services (PostgreSQL, Redis, Prometheus, the test apiserver, loopback HTTP),
git repositories, and the registry.

Service fixtures live in `tests/services/` and `tests/kubeapi/`; they are registered here as
plugins so every test folder sees them. With HEMOSTAT_REQUIRE_SERVICES=1 (set by .ci/run) a
missing server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import settings

from agent.diagnosis.registry import Registry
from tests.loopback import LoopbackServer, serve

# No per-example deadline: speed is measured in bench/, never in a timed test. Hypothesis's
# default 200 ms failed a log-grouping property once on a busy 2-core machine (its first
# Hyperscan compile), with no falsifying input in 3,000 examples run without it.
settings.register_profile("hemostat", deadline=None)
settings.load_profile("hemostat")

pytest_plugins: list[str] = ["tests.services.redis", "tests.services.postgres", "tests.services.prometheus",
                             "tests.services.alertmanager", "tests.kubeapi.fixtures", "tests.cluster.fixtures"]


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A real HTTP server on 127.0.0.1 with configurable routes."""
    yield from serve()


@pytest.fixture
def registry() -> Registry:
    """Every installed probe and action, freshly discovered for this test."""
    return Registry.discover()


def git_commit(repo: Path, message: str, when: datetime, author: str = "Dana Deployer",
               file: str = "app.yaml") -> str:
    """Commit a change to `repo` at `when`; returns the sha."""
    env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": "a@example.com",
           "GIT_AUTHOR_DATE": when.isoformat(), "GIT_COMMITTER_DATE": when.isoformat()}
    (repo / file).write_text(f"{message}\n")
    subprocess.run(["git", "-C", str(repo), "add", file], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True, env=env)
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, env=env,
                         capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def deploy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "deploys"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return repo
