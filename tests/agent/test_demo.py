"""`hemostat demo` closes the loop with no cluster: the app runs what its git repo says, the
rollback reverts the deploy in git, verify sees the errors back to baseline, the incident goes to
monitoring and is resolved, a post-mortem is written, and the folder replays each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.cli.demo_app import Counters, deployed_image, serve
from agent.cli.demo_scene import REDEPLOY, make_deploy_repo

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")


def _cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEMOSTAT_CONFIG": str(workdir / "hemostat.yaml")}
    return subprocess.run([HEMOSTAT, *args], env=env, capture_output=True, text=True, timeout=120, cwd=workdir)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    workdir = tmp_path_factory.mktemp("demo") / "d"
    done = subprocess.run([HEMOSTAT, "demo", "--dir", str(workdir)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_COLOR": "1"})
    return workdir, done


def test_make_demo_ends_with_the_mitigation_verified_and_the_incident_resolved(
        demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    order = ["$ hemostat --user dana diagnose checkout", "$ hemostat --user sam approve",
             "$ hemostat --user sam execute", "succeeded: revert", "monitoring",
             "checkout: no problem found", "resolved by sam", "$ hemostat postmortem"]
    positions = [out.find(step) for step in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions, strict=True))
    [incident] = json.loads(_cli(workdir, "incidents", "-o", "json").stdout)
    assert incident["status"] == "resolved"
    [proposal] = json.loads(_cli(workdir, "proposals", "--all", "--json").stdout)
    assert proposal["state"] == "succeeded" and proposal["action"] == "rollback"
    assert "no longer report an error spike" in out
    events = json.loads(_cli(workdir, "show", incident["id"], "-o", "json").stdout)["events"]
    moves = [(e["data"]["to"], e["data"].get("cause")) for e in events if e["type"] == "status_changed"]
    assert moves[-2:] == [("monitoring", "mitigation_verified"), ("resolved", None)], moves
    assert [e["type"] for e in events].index("verification") < [e["type"] for e in events].index("proposal_succeeded")
    assert (workdir / "postmortem.md").read_text().startswith("# Post-mortem")


def test_the_evidence_is_right_about_the_image_and_the_baseline(
        demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = demo
    assert "changed no container image" not in done.stdout
    assert "changed the image shop/checkout:v1.7.1 -> shop/checkout:v1.8.0" in done.stdout
    # the baseline says where it comes from, and is the app's usual ratio, not the incident's
    assert "baseline 2% since the app started" in done.stdout


def test_the_revert_is_in_the_repo_and_the_app_serves_it(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, _ = demo
    log = subprocess.run(["git", "-C", str(workdir / "deploys"), "log", "-1", "--format=%an %s%n%b"],
                         capture_output=True, text=True, check=True).stdout
    assert log.startswith("Hemostat Revert \"checkout: v1.8.0") and "Hemostat-Revert-Of:" in log
    assert deployed_image(workdir / "deploys") == "shop/checkout:v1.7.1"


def test_steps_sh_replays_the_demo_from_the_start(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, _ = demo
    script = (workdir / "steps.sh").read_text()
    assert "hemostat demo --serve" in script and REDEPLOY in script
    for step in ("--user dana diagnose checkout", '--user sam approve "$PID"', '--user sam execute "$PID"',
                 '--user sam resolve "$INC"', 'postmortem "$INC"'):
        assert f"hemostat {step}" in script, step
    server = serve_app_again(workdir)
    try:
        subprocess.run(REDEPLOY, shell=True, cwd=workdir, check=True, capture_output=True)
        (workdir / "ledger.db").unlink()
        path = os.environ["PATH"]
        replay = subprocess.run(["sh", "steps.sh"], cwd=workdir, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PATH": f"{Path(HEMOSTAT).parent}:{path}", "NO_COLOR": "1"})
    finally:
        server.shutdown()
        server.server_close()
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-2000:]
    assert "succeeded: revert" in replay.stdout and "resolved by sam" in replay.stdout
    assert deployed_image(workdir / "deploys") == "shop/checkout:v1.7.1"


def serve_app_again(workdir: Path) -> Any:
    """What `hemostat demo --serve DIR` runs: the app on the port the folder's config names."""
    from urllib.parse import urlsplit

    import yaml

    url = yaml.safe_load((workdir / "hemostat.yaml").read_text())["targets"][0]["metrics"]["url"]
    return serve(workdir / "deploys", urlsplit(url).port or 0)


def test_the_app_runs_what_the_branch_says_and_recovers_when_reverted(tmp_path: Path) -> None:
    repo = tmp_path / "deploys"
    make_deploy_repo(repo, datetime.now(UTC))
    clock = [0.0]
    counters = Counters(repo, clock=lambda: clock[0])
    before = counters.advance()
    clock[0] = 10.0
    broken = counters.advance()
    assert broken[2] == "shop/checkout:v1.8.0"
    assert (broken[1] - before[1]) / (broken[0] - before[0]) == pytest.approx(0.4, abs=0.01)
    subprocess.run(["git", "-C", str(repo), "revert", "--no-edit", "HEAD"], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    clock[0] = 20.0
    healed = counters.advance()
    assert healed[2] == "shop/checkout:v1.7.1"
    assert (healed[1] - broken[1]) / (healed[0] - broken[0]) == pytest.approx(0.005, abs=0.002)
    server = serve(repo)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/version", timeout=10) as answer:
            assert answer.read().decode().strip() == "shop/checkout:v1.7.1"
    finally:
        server.shutdown()
        server.server_close()
