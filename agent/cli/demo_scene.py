"""`hemostat demo`: a real local incident on the embedded default, worked from alert to post-mortem.

Builds, in a folder: a git deploy repo whose last deploy (checkout v1.8.0) landed minutes ago; the
app it deploys (agent/cli/demo_app.py), which runs what the repo's branch says and fails 40% of
requests on v1.8.0; a loopback "third-party" health endpoint; a hemostat.yaml whose target is
deployed from that repo (`gitops: git-revert`). Then runs the real CLI, one process per step:
diagnose → approve → execute (the revert is pushed, verify re-probes until the errors are back to
baseline) → monitoring → a clean diagnosis → resolved → post-mortem. Every step is written to
`steps.sh` in the folder, with `hemostat demo --serve DIR` to bring the app back, so a user can
replay each one.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml

from agent.cli.demo_app import deployed_image, serve
from agent.cli.output import style
from policies.model import bundled_policy_path

ASKER, APPROVER = "dana", "sam"  # who ran diagnose, and the second pair of eyes
# v1.8.0 deployed again, landing now (a deploy hours old would not be a suspect any more)
REDEPLOY = "git -C deploys -c user.name=Dana -c user.email=dana@example.com revert --no-edit HEAD"


def _git(repo: Path, *args: str, when: datetime | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dana Deployer", "GIT_AUTHOR_EMAIL": "dana@example.com",
           "GIT_COMMITTER_NAME": "Dana Deployer", "GIT_COMMITTER_EMAIL": "dana@example.com"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def make_deploy_repo(repo: Path, now: datetime) -> None:
    """Three deploys: yesterday, two hours ago, and one 4 minutes ago that broke checkout."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "receive.denyCurrentBranch", "updateInstead")  # the revert is pushed here
    for minutes_ago, image, subject in ((1440, "v1.7.0", "checkout: v1.7.0"),
                                        (120, "v1.7.1", "checkout: v1.7.1 (fix receipts)"),
                                        (4, "v1.8.0", "checkout: v1.8.0 (new payment flow)")):
        (repo / "checkout.yaml").write_text(f"image: shop/checkout:{image}\nreplicas: 3\n")
        _git(repo, "add", "checkout.yaml")
        _git(repo, "commit", "-q", "-m", subject, when=now - timedelta(minutes=minutes_ago))
    _git(repo, "tag", "v1.8.0")


def write_config(workdir: Path, app_url: str) -> Path:
    config = {
        "store": {"path": "ledger.db"},
        # The demo policy: on one laptop nobody else can vouch for you, so --user names count;
        # a rollback of a target deployed from git pushes its revert to the deploy branch.
        "policy": str(bundled_policy_path("demo")),
        "targets": [{
            "name": "checkout", "namespace": "shop",
            # Deployed from its repo, not a cluster: a rollback is a git revert, verified by effect.
            "gitops": "git-revert",
            "probes": ["git-deploys", "app-metrics", "http-health"],
            "deploy_repo": {"path": "deploys", "branch": "main"},
            "metrics": {"url": f"{app_url}/metrics", "scrape_interval_s": 1.0},
            "dependencies": [{"name": "payments-api", "url": f"{app_url}/health"}],
        }],
    }
    path = workdir / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Steps:
    """Runs `hemostat ARGS` in the demo folder, shows it, and writes it to steps.sh."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.script = workdir, workdir / "steps.sh"
        self.names: dict[str, str] = {}  # an id seen in this run -> the shell variable replaying it
        self.script.write_text(
            "#!/bin/sh\n# The demo's steps, in order. Bring the app back first (another terminal):\n"
            f"#   hemostat demo --serve {shlex.quote(str(workdir))}\n"
            "# then deploy v1.8.0 again (a revert of the revert, landing now) on a fresh ledger, and go:\n"
            f"#   {REDEPLOY} && rm -f ledger.db && sh steps.sh\n"
            "set -e\ncd \"$(dirname \"$0\")\"\nexport HEMOSTAT_CONFIG=hemostat.yaml\n")

    def name(self, variable: str, value: str, listing: str) -> None:
        """Replay `value` (an id this run made) as $`variable`, read from `hemostat LISTING -o json`."""
        self.names[value] = variable
        pick = "import json, sys; print(json.load(sys.stdin)[0]['id'])"
        with self.script.open("a") as script:
            script.write(f"{variable}=$(hemostat {listing} -o json | python3 -c \"{pick}\")\n")

    def env(self) -> dict[str, str]:
        return {**os.environ, "HEMOSTAT_CONFIG": str(self.workdir / "hemostat.yaml")}

    def run(self, why: str, *args: str, ok: tuple[int, ...] = (0,)) -> None:
        line = " ".join(shlex.quote(a) for a in args)
        click.echo(style(f"\n# {why}\n$ hemostat {line}", fg="blue", bold=True))
        replay = " ".join(f'"${self.names[a]}"' if a in self.names else shlex.quote(a) for a in args)
        with self.script.open("a") as script:
            script.write(f"\n# {why}\nhemostat {replay}" + (" || true" if ok != (0,) else "") + "\n")
        result = subprocess.run([sys.executable, "-m", "agent", *args], env=self.env(), check=False,
                                cwd=self.workdir)
        if result.returncode not in ok:
            raise SystemExit(result.returncode)

    def read(self, *args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "agent", *args, "-o", "json"], env=self.env(),
                             check=True, capture_output=True, text=True, cwd=self.workdir).stdout
        return json.loads(out)


def run_demo(keep: Path | None = None) -> None:
    workdir = (keep or Path(tempfile.mkdtemp(prefix="hemostat-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    make_deploy_repo(workdir / "deploys", datetime.now(UTC))
    server = serve(workdir / "deploys")
    try:
        write_config(workdir, f"http://127.0.0.1:{server.server_port}")
        click.echo(f"demo incident built in {workdir}: checkout runs "
                   f"{deployed_image(workdir / 'deploys')} (deployed 4 min ago from deploys/, branch "
                   "main), errors climbing, payments-api healthy")
        steps = Steps(workdir)
        steps.run("what is wrong? (exit 3: an incident)", "--user", ASKER, "diagnose", "checkout",
                  ok=(3,))
        pid = str(steps.read("proposals")[0]["id"])
        steps.name("PID", pid, "proposals")
        steps.run("what would the rollback do, and why?", "show", pid)
        steps.run("a second engineer approves", "--user", APPROVER, "approve", pid)
        steps.run("run it: revert the deploy in git, then verify by effect", "--user", APPROVER,
                  "execute", pid)
        click.echo(f"(checkout now runs {deployed_image(workdir / 'deploys')})")
        incident = str(steps.read("incidents")[0]["id"])
        steps.name("INC", incident, "incidents")
        steps.run("the incident is monitoring: the mitigation is verified", "incidents")
        steps.run("look again: is anything still wrong?", "diagnose", "checkout", "--no-ledger")
        steps.run("resolve it", "--user", APPROVER, "resolve", incident,
                  "--note", "errors back to baseline after the rollback")
        steps.run("write the post-mortem", "postmortem", incident, "-o", "postmortem.md")
        click.echo(f"\nEverything is in {workdir}: hemostat.yaml, deploys/ (the revert is its last "
                   f"commit), ledger.db, postmortem.md, and steps.sh to replay each step:\n"
                   f"  hemostat demo --serve {workdir}   # the app, in another terminal\n"
                   f"  cd {workdir} && {REDEPLOY} && rm -f ledger.db && sh steps.sh")
    finally:
        server.shutdown()
        server.server_close()


def serve_app(workdir: Path) -> None:
    """`hemostat demo --serve DIR`: the app of a demo folder again, on the port its config names."""
    from urllib.parse import urlsplit

    config = yaml.safe_load((workdir / "hemostat.yaml").read_text())
    port = urlsplit(config["targets"][0]["metrics"]["url"]).port or 0
    server = serve(workdir / "deploys", port)
    click.echo(f"demo app on http://127.0.0.1:{server.server_port} runs "
               f"{deployed_image(workdir / 'deploys')}; Ctrl-C stops it", err=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
