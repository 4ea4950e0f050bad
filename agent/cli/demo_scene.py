"""`hemostat demo`: a real local incident on the embedded default, no cluster needed.

Builds, in a temp dir: a git deploy repo whose last deploy landed minutes ago; a loopback HTTP
app whose Prometheus metrics show errors climbing; a loopback "third-party" health endpoint.
Writes a hemostat.yaml for it, then runs the real CLI: `diagnose`, `proposals`, `show`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import yaml

from policies.model import bundled_policy_path


class _App(BaseHTTPRequestHandler):
    """Serves /metrics (errors climb ~40% of requests per scrape) and /health (200)."""

    started = time.monotonic()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        if self.path == "/metrics":
            elapsed = time.monotonic() - self.started
            requests, errors = int(1000 + 200 * elapsed), int(10 + 80 * elapsed)
            body = (
                "# TYPE http_requests_total counter\n"
                f'http_requests_total{{code="200"}} {requests - errors}\n'
                f'http_requests_total{{code="500"}} {errors}\n'
                "# TYPE http_requests_errors_total counter\n"
                f"http_requests_errors_total {errors}\n"
            ).encode()
        elif self.path == "/health":
            body = b"ok\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, name="demo-app", daemon=True).start()
    return server


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
    for minutes_ago, image, subject in ((1440, "v1.7.0", "checkout: v1.7.0"),
                                        (120, "v1.7.1", "checkout: v1.7.1 (fix receipts)"),
                                        (4, "v1.8.0", "checkout: v1.8.0 (new payment flow)")):
        (repo / "checkout.yaml").write_text(f"image: shop/checkout:{image}\n")
        _git(repo, "add", "checkout.yaml")
        _git(repo, "commit", "-q", "-m", subject, when=now - timedelta(minutes=minutes_ago))
    _git(repo, "tag", "v1.8.0")


def write_config(workdir: Path, app_url: str) -> Path:
    config = {
        "store": {"path": "ledger.db"},
        # The demo policy: on one laptop nobody else can vouch for you, so --user names count.
        "policy": str(bundled_policy_path("demo")),
        "targets": [{
            "name": "checkout", "namespace": "shop", "deployment": "checkout",
            # No cluster here: the Kubernetes probes would only report that they cannot look.
            "probes": ["git-deploys", "app-metrics", "http-health"],
            "deploy_repo": {"path": "deploys", "branch": "main"},
            "metrics": {"url": f"{app_url}/metrics", "scrape_interval_s": 1.0},
            "dependencies": [{"name": "payments-api", "url": f"{app_url}/health"}],
        }],
    }
    path = workdir / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _hemostat(config: Path, *args: str) -> None:
    click.secho(f"\n$ hemostat {' '.join(args)}", fg="blue", bold=True)
    env = {**os.environ, "HEMOSTAT_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-m", "agent", *args], env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def run_demo(keep: Path | None = None) -> None:
    workdir = keep or Path(tempfile.mkdtemp(prefix="hemostat-demo-"))
    server = _serve()
    try:
        make_deploy_repo(workdir / "deploys", datetime.now(UTC))
        config = write_config(workdir, f"http://127.0.0.1:{server.server_port}")
        click.echo(f"demo incident built in {workdir}: checkout deployed v1.8.0 4 min ago, "
                   "errors climbing, payments-api healthy")
        _hemostat(config, "diagnose", "checkout")
        _hemostat(config, "proposals")
        pid = _first_proposal(config)
        _hemostat(config, "show", pid)
        exe = Path(sys.executable).parent / "hemostat"
        click.echo(f"\nNext (cd {workdir}):\n"
                   f"  {exe} --user you approve {pid}   # as someone other than whoever ran diagnose\n"
                   f"  {exe} policy explain {pid}\n"
                   f"  {exe} drill {Path(__file__).resolve().parents[1] / 'drills'}/*.yaml")
    finally:
        server.shutdown()


def _first_proposal(config: Path) -> str:
    env = {**os.environ, "HEMOSTAT_CONFIG": str(config)}
    out = subprocess.run([sys.executable, "-m", "agent", "proposals", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    import json

    return str(json.loads(out)[0]["id"])

