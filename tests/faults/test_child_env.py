"""Issue 23, L2: git child processes inherited the daemon's whole environment, the ledger's DSN
included. A `git` first on PATH that records its environment, then runs the real one, shows what
the git-deploys probe's children now get."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.model.targets import DeployRepoSpec
from probes.git_deploys import _read_log
from tests.conftest import git_commit


def test_git_children_get_a_minimal_environment(tmp_path: Path, deploy_repo: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    git_commit(deploy_repo, "checkout v2", datetime.now(UTC) - timedelta(minutes=2))
    real = shutil.which("git")
    assert real is not None
    spy = tmp_path / "bin" / "git"
    spy.parent.mkdir()
    spy.write_text(f'#!/bin/sh\nenv >> "{tmp_path / "seen"}"\nexec "{real}" "$@"\n')
    spy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy.parent}:{Path(real).parent}")
    monkeypatch.setenv("HEMOSTAT_LEDGER_DSN", "postgresql://hemostat:sEcChildPw@db/ledger")
    monkeypatch.setenv("PAYMENTS_TOKEN", "sEcChildTok")
    commits = asyncio.run(_read_log(DeployRepoSpec(path=deploy_repo), datetime.now(UTC) - timedelta(hours=1)))
    seen = (tmp_path / "seen").read_text()
    assert [c["subject"] for c in commits][:1] == ["checkout v2"]  # git still works
    assert "sEcChildPw" not in seen and "sEcChildTok" not in seen
    assert "HEMOSTAT_LEDGER_DSN" not in seen and "LC_ALL=C" in seen
