"""The real services figure 1 needs, started for the run and torn down after it.

Prometheus: the Debian binary, started on a free loopback port scraping the bench app.
PostgreSQL: `HEMOSTAT_TEST_PG_DSN` if set, else a throwaway cluster made with the local binaries
through tests/services/postgres.py (initdb + pg_ctl on a free loopback port). The Kubernetes API:
the fake kube-apiserver from tests/kubeapi, seeded with a Deployment `app`, its Pod and a log,
plus a kubeconfig pointing at it (for kubectl and for `hemostat diagnose` alike).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

APP_LABELS = {"app": "app"}


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A superuser DSN, or None when no PostgreSQL can be had on this machine."""
    dsn = os.environ.get("HEMOSTAT_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    try:
        from tests.services.postgres import LocalCluster, PgServer, _bindir, _unprivileged_user
    except ImportError:
        yield None
        return
    bindir = _bindir()
    if bindir is None:
        yield None
        return
    cluster = LocalCluster(bindir=bindir, user=_unprivileged_user())
    try:
        cluster.init()
        cluster.start()
        yield PgServer("127.0.0.1", cluster.port, "postgres", cluster.password).admin_dsn
    finally:
        cluster.destroy()


def _pod(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": APP_LABELS},
            "spec": {"containers": [{"name": "app", "image": "shop/app:v1.3.0"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                              "image": "shop/app:v1.3.0", "imageID": "",
                                              "state": {"running": {}}}]}}


def _deployment() -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "default", "labels": APP_LABELS},
            "spec": {"replicas": 1, "selector": {"matchLabels": APP_LABELS},
                     "template": {"metadata": {"labels": APP_LABELS},
                                  "spec": {"containers": [{"name": "app", "image": "shop/app:v1.3.0"}]}}}}


def _oncall_may_diagnose(server: Any) -> None:
    """The kubeconfig's token is user `bench` in group `oncall`, which may have the daemon
    diagnose targets in `default`; the daemon (same token) may review tokens and access."""
    from tests.kubeapi.grants import auth_delegator, grant_role

    server.auth.add_token("bench-token", "bench", ("oncall",))
    grant_role(server, "default", "diagnoser",
               [{"apiGroups": ["hemostat.io"], "resources": ["diagnoses"], "verbs": ["create"]}], ["oncall"])
    auth_delegator(server, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bench"},
                   name="bench-reviews")


def app_log(lines: int = 400) -> str:
    out = []
    for i in range(lines):
        if i % 7 == 3:
            out.append(f"2026-11-27T02:5{i % 10}:00Z ERROR payment {i} failed: upstream timeout after 5000ms")
        else:
            out.append(f"2026-11-27T02:5{i % 10}:00Z INFO GET /checkout/{i} 200 12ms")
    return "\n".join(out) + "\n"


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: fake, cluster: {{server: \"{url}\"}}}}]\n"
        "users: [{name: bench, user: {token: bench-token}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: bench, namespace: default}}]\n"
        "current-context: fake\n")
    return path


@contextlib.contextmanager
def prometheus(workdir: Path, target: str) -> Iterator[str | None]:
    """A real Prometheus (tests/services/prometheus.py) scraping `target` every second, with
    enough samples for a rate; None when the binary is not installed."""
    import shutil

    if shutil.which("prometheus") is None:
        yield None
        return
    from tests.services.prometheus import launch

    workdir.mkdir(parents=True, exist_ok=True)
    server = launch(workdir, targets=[target])
    try:
        server.wait_for("sum(rate(http_requests_total[1m])) > 0", timeout_s=60)
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def kube_api(workdir: Path) -> Iterator[Path]:
    """The fake apiserver with app's Deployment, Pod and log; yields its kubeconfig."""
    from tests.kubeapi.server import FakeApiServer

    server = FakeApiServer()
    url = server.start()
    try:
        _oncall_may_diagnose(server)
        server.seed(_deployment())
        server.seed(_pod("app-7d4b9c6f8-x2x7q"))
        server.set_pod_log("default", "app-7d4b9c6f8-x2x7q", "app", app_log())
        yield write_kubeconfig(workdir / "kubeconfig", url)
    finally:
        server.stop()
