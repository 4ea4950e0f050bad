"""Re-record the shipped drill scenarios (drills/*.yaml).

Two sources. Recorded: each builds a real situation on this machine — a git deploy repo and a
failing app on loopback; a PostgreSQL cluster with a lock chain and a runaway query; a dependency
that is down while its status page reports a major outage; a deployment at its HPA's maximum on
the test apiserver — then runs `hemostat diagnose TARGET --record FILE`. Corpus: the incidents
of tests/corpus_playbook.py and tests/corpus_edges.py, built from raw API answers (`git log`
output, kubelet log lines, Kubernetes and metrics-server JSON, pg_stat_activity rows, Statuspage
JSON, Prometheus text) passed through each probe's own collect-side shaping, written with the
conclusions they must reach. Run from the repo root:

    .venv/bin/python scripts/record_drills.py            # everything
    .venv/bin/python scripts/record_drills.py corpus     # only the corpus (no services needed)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.cli.demo_scene import _serve, make_deploy_repo  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402

DRILLS = ROOT / "drills"


def diagnose(workdir: Path, config: dict[str, Any], target: str, out: str, env: dict[str, str] | None = None) -> None:
    path = workdir / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    exe = Path(sys.executable).parent / "hemostat"
    done = subprocess.run([str(exe), "--config", str(path), "diagnose", target, "--no-ledger",
                           "--record", str(DRILLS / out)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    print(done.stdout)
    if done.returncode not in (0, 3, 4):  # 3: an incident, 4: incomplete
        raise SystemExit(done.stderr)
    doc = yaml.safe_load((DRILLS / out).read_text())
    doc["name"] = out.removesuffix(".yaml").replace("-", " ") + f" (recorded {doc['started_at'][:16]}Z)"
    (DRILLS / out).write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"recorded {out}: expect {doc['expect']}")


def deployment_gone_wrong(workdir: Path) -> None:
    server = _serve()
    try:
        make_deploy_repo(workdir / "deploys", datetime.now(UTC))
        url = f"http://127.0.0.1:{server.server_port}"
        diagnose(workdir, {"targets": [{
            "name": "checkout", "namespace": "shop", "deployment": "checkout",
            "probes": ["git-deploys", "app-metrics", "http-health"],
            "deploy_repo": {"path": str(workdir / "deploys")},
            "metrics": {"url": f"{url}/metrics", "scrape_interval_s": 1.0},
            "dependencies": [{"name": "payments-api", "url": f"{url}/health"}]}]},
            "checkout", "deployment-gone-wrong.yaml")
    finally:
        server.shutdown()


@contextmanager
def postgres() -> Iterator[Any]:
    from tests.services.postgres import LocalCluster, PgServer, _bindir, _unprivileged_user

    bindir = _bindir()
    assert bindir is not None, "PostgreSQL server binaries are needed"
    cluster = LocalCluster(bindir=bindir, user=_unprivileged_user())
    cluster.init()
    cluster.start()
    try:
        yield PgServer("127.0.0.1", cluster.port, "postgres", cluster.password)
    finally:
        cluster.destroy()


def database_issues(workdir: Path) -> None:
    import psycopg

    with postgres() as pg:
        admin = psycopg.connect(pg.dsn(), autocommit=True)
        admin.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")
        admin.execute("INSERT INTO orders VALUES (1, 10)")
        holder = psycopg.connect(pg.dsn(), application_name="checkout-worker")
        holder.execute("UPDATE orders SET total = 11 WHERE id = 1")  # holds the row lock, idle in tx
        waiters = [psycopg.connect(pg.dsn(), autocommit=True, application_name="checkout-api")
                   for _ in range(2)]
        for w in waiters:
            w.pgconn.send_query(b"UPDATE orders SET total = total + 1 WHERE id = 1")
        runaway = psycopg.connect(pg.dsn(), autocommit=True, application_name="reports")
        runaway.pgconn.send_query(b"SELECT pg_sleep(600)")
        time.sleep(2.5)
        diagnose(workdir, {"targets": [{
            "name": "checkout", "namespace": "shop", "deployment": "checkout", "probes": ["pg-activity"],
            "postgres": {"dsn": {"env": "CHECKOUT_DB_DSN"}},
            "thresholds": {"long_query_seconds": 2, "lock_wait_seconds": 2,
                           "idle_in_transaction_seconds": 2}}]},
            "checkout", "database-issues.yaml", env={"CHECKOUT_DB_DSN": pg.dsn()})
        for conn in [holder, runaway, *waiters]:
            conn.close()
        admin.close()


STATUS = {"page": {"id": "x", "name": "Stripe", "url": "https://status.stripe.com"},
          "status": {"indicator": "major", "description": "Partial System Outage"}}
UNRESOLVED = {"page": STATUS["page"], "incidents": [{
    "id": "p31zjtct2jer", "name": "Elevated API error rates", "status": "investigating",
    "impact": "major", "created_at": "", "started_at": "", "shortlink": "https://stspg.io/x",
    "incident_updates": [{"status": "investigating", "body": "We are investigating elevated errors."}]}]}


def third_party_outage(workdir: Path) -> None:
    server = LoopbackServer().start()
    try:
        started = (datetime.now(UTC)).isoformat()
        UNRESOLVED["incidents"][0].update(created_at=started, started_at=started)
        server.route("/health", status=503)
        server.route("/api/v2/status.json", body=json.dumps(STATUS), content_type="application/json")
        server.route("/api/v2/incidents/unresolved.json", body=json.dumps(UNRESOLVED),
                     content_type="application/json")
        diagnose(workdir, {"targets": [{
            "name": "checkout", "namespace": "shop", "deployment": "checkout",
            "probes": ["http-health", "provider-status"],
            "dependencies": [{
                "name": "stripe", "url": f"{server.url}/health", "statuspage_url": server.url,
                "breaker": {"name": "stripe", "redis_url": {"env": "CHECKOUT_REDIS_URL"}},
                "fallback": {"backend": "configmap", "configmap": "checkout-config", "key": "PAYMENTS_PROVIDER",
                             "primary": "stripe", "secondary": "adyen"}}]}]},
            "checkout", "third-party-outage.yaml")
    finally:
        server.stop()


def _kubeconfig(workdir: Path, url: str) -> Path:
    path = workdir / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "hemostat", "user": {"token": "not-checked-by-the-test-apiserver"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hemostat"}}]}))
    return path


def _seed_busy_deployment(api: Any, replicas: int = 4) -> None:
    labels = {"app": "checkout"}
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    container = {"name": "app", "image": "shop/checkout:v1.8.0",
                 "resources": {"limits": {"cpu": "500m", "memory": "512Mi"},
                               "requests": {"cpu": "250m", "memory": "256Mi"}}}
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "checkout", "namespace": "shop", "labels": labels},
              "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                       "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
    for i in range(replicas):
        name = f"checkout-7d9f8-{i}"
        api.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
                  "spec": {"containers": [container]},
                  "status": {"phase": "Running", "containerStatuses": [
                      {"name": "app", "ready": True, "restartCount": 0, "image": container["image"],
                       "imageID": "", "state": {"running": {"startedAt": "2026-11-27T01:00:00Z"}}}]}})
        api.seed({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                  "metadata": {"name": name, "namespace": "shop", "labels": labels},
                  "timestamp": datetime.now(UTC).isoformat(), "window": "30s",
                  "containers": [{"name": "app", "usage": {"cpu": "492m", "memory": "301Mi"}}]})
    api.seed({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "checkout", "namespace": "shop"},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                       "minReplicas": 2, "maxReplicas": replicas},
              "status": {"currentReplicas": replicas, "desiredReplicas": replicas * 2}})


def traffic_spike(workdir: Path) -> None:
    from tests.kubeapi.server import FakeApiServer

    api = FakeApiServer()
    url = api.start()
    try:
        _seed_busy_deployment(api)
        diagnose(workdir, {
            "kubernetes": {"kubeconfig": str(_kubeconfig(workdir, url))},
            "targets": [{"name": "checkout", "namespace": "shop", "deployment": "checkout",
                         "probes": ["k8s-workload"]}]},
            "checkout", "traffic-spike.yaml")
    finally:
        api.stop()


def corpus() -> None:
    """Write every corpus incident to drills/<class>-<name>.yaml."""
    from tests.corpus_edges import CLASSES

    for prefix, builders in CLASSES.items():
        for build in builders:
            name = build.__name__.replace("_", "-")
            out = DRILLS / f"{prefix}-{name}.yaml"
            out.write_text(yaml.safe_dump(build().scenario(), sort_keys=False, width=120))
            print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    DRILLS.mkdir(exist_ok=True)
    only = set(sys.argv[1:])
    if not only or "corpus" in only:
        corpus()
    for name, record in (("deployment", deployment_gone_wrong), ("database", database_issues),
                         ("third-party", third_party_outage), ("traffic", traffic_spike)):
        if not only or name in only:
            with tempfile.TemporaryDirectory(prefix=f"hemostat-drill-{name}-") as tmp:
                record(Path(tmp))


if __name__ == "__main__":
    main()
