"""Time to verified mitigation on the real control plane (issue 21, item 6).

The real chain: a loopback app whose error rate follows the image each target's Deployment runs
(read from the real apiserver: an image tagged `bad` fails half its requests) -> the real
Prometheus (rule `HighErrorRate`, `for: 2s`) -> the real Alertmanager (`group_wait` 1 s) ->
`hemostat run` under an auto policy, probing with `k8s-workload` (the rollout is the deploy) and
`prometheus` (the error ratio) -> rollback of the Deployment on the real control plane (kube-apiserver,
controller-manager, scheduler, kwok: tests/cluster) -> verify (rollout available, re-probe).

Per incident (one target each, one at a time), from the first failing request (the app's first
scrape that sees the bad image) to the ledger's `verification` event, split by the events on
the way: rule `for` (first failing request -> Prometheus fires: scrape, evaluation, `for`),
Alertmanager wait (firing -> the daemon records the delivery, `alert_fired`), diagnosis
(delivery -> proposal), decision (proposal -> execution started: policy, claim, plan), rollout
(execution started -> finished: the patch), verify (finished -> verified: the controller rolls
back, the daemon polls every 2 s and re-probes).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from bench.timing import percentile
from tests.agent.daemon_harness import TOKEN, start_daemon
from tests.cluster.fixtures import SCRIPT, load
from tests.cluster.kube import client_for, create, rolled_out, workload
from tests.loopback import LoopbackServer, serve
from tests.services import free_port
from tests.services.alertmanager import start_alertmanager
from tests.services.prometheus import PrometheusServer
from tests.services.prometheus import write_config as prometheus_config

RULES = {"groups": [{"name": "ttm", "rules": [{
    "alert": "HighErrorRate", "expr": "rate(http_requests_errors_total[3s]) > 0", "for": "2s",
    "labels": {"severity": "critical", "hemostat_target": "{{ $labels.target }}"},
    "annotations": {"summary": "{{ $labels.target }}: requests failing"}}]}]}
POLICY = {"version": 1, "mode": "auto", "cooldown_minutes": 0, "actions": {"rollback": {"auto": True}}}
INCIDENT_TIMEOUT_S = 180
GOAL_S = 30.0
SPANS = ("rule_for", "alertmanager_wait", "diagnosis", "decision", "rollout", "verify")


class ImageApp:
    """Counters per target; errors climb while the target's Deployment image (polled from the
    API every 0.2 s) is a bad one. Remembers when each target first failed."""

    def __init__(self, client: kubernetes.client.ApiClient, namespace: str, targets: list[str]) -> None:
        self.apps, self.ns, self.targets = kubernetes.client.AppsV1Api(client), namespace, targets
        self.started = time.monotonic()
        self.errors = dict.fromkeys(targets, 0.0)
        self.bad_since: dict[str, float] = {}
        self.first_failure: dict[str, float] = {}  # wall clock
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> ImageApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for target in self.targets:
                image = self.apps.read_namespaced_deployment(target, self.ns).spec.template.spec.containers[0].image
                with self._lock:
                    now = time.monotonic()
                    if image.endswith(":bad") and target not in self.bad_since:
                        self.bad_since[target] = now
                        self.first_failure.setdefault(target, time.time())
                    elif not image.endswith(":bad") and target in self.bad_since:
                        self.errors[target] += (now - self.bad_since.pop(target)) * 5000.0

    def text(self) -> str:
        lines = ["# TYPE http_requests_total counter", "# TYPE http_requests_errors_total counter"]
        with self._lock:
            now = time.monotonic()
            for t in self.targets:
                errors = self.errors[t] + ((now - self.bad_since[t]) * 5000.0 if t in self.bad_since else 0.0)
                lines += [f'http_requests_total{{target="{t}"}} {(now - self.started) * 10000.0 + 5e7:.1f}',
                          f'http_requests_errors_total{{target="{t}"}} {errors:.1f}']
        return "\n".join(lines) + "\n"


def _events(ledger: Path) -> list[tuple[str, float, str | None, dict[str, Any]]]:
    from agent.ledger.sqlite import SqliteLedger

    opened = SqliteLedger(ledger)
    try:
        return [(e.type, e.at.timestamp(), e.proposal_id, e.data) for e in opened.events()]
    finally:
        opened.close()


def _firing_at(prometheus: str, target: str) -> float | None:
    import httpx

    for alert in httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]:
        if alert["labels"].get("hemostat_target") == target and alert["state"] == "firing":
            # activeAt is when the rule first matched (pending); it fires `for` later
            return datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp() + 2.0
    return None


def _one(app: ImageApp, client: kubernetes.client.ApiClient, ns: str, target: str, ledger: Path,
         prometheus: str) -> dict[str, float]:
    kubernetes.client.AppsV1Api(client).patch_namespaced_deployment(target, ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": f"shop/{target}:bad"}]}}}})
    deadline, firing = time.monotonic() + INCIDENT_TIMEOUT_S, None
    while time.monotonic() < deadline:
        firing = firing or _firing_at(prometheus, target)
        marks = _marks(_events(ledger), target)
        if "verification" in marks:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{target}: not mitigated within {INCIDENT_TIMEOUT_S}s; ledger: {_marks(_events(ledger), target)}")
    if not marks["verified"]:
        raise RuntimeError(f"{target}: the rollback did not verify")
    start = app.first_failure[target]
    points = [start, firing or marks["alert_fired"], marks["alert_fired"], marks["proposal"],
              marks["execution_started"], marks["execution_finished"], marks["verification"]]
    spans = {name: points[i + 1] - points[i] for i, name in enumerate(SPANS)}
    return {**spans, "total": marks["verification"] - start}


def _marks(events: list[tuple[str, float, str | None, dict[str, Any]]], target: str) -> dict[str, Any]:
    """The first of each event for `target` (alert deliveries by label, the rest by proposal)."""
    marks: dict[str, Any] = {}
    for kind, at, pid, data in events:
        if kind == "alert_fired" and any(a["labels"].get("hemostat_target") == target for a in data.get("alerts", [])):
            marks.setdefault(kind, at)
        elif kind == "proposal" and (data.get("proposal") or {}).get("target") == target:
            marks.setdefault(kind, at)
            marks.setdefault("pid", pid or data["proposal"]["id"])
    for kind, at, pid, data in events:
        if marks.get("pid") and pid == marks["pid"] and kind in ("execution_started", "execution_finished",
                                                                  "verification"):
            marks.setdefault(kind, at)
            if kind == "verification":
                marks.setdefault("verified", data.get("ok"))
    return marks


def run(quick: bool) -> dict[str, Any]:
    n = 5
    alertmanager_bin, prometheus_bin = shutil.which("prometheus-alertmanager"), shutil.which("prometheus")
    if alertmanager_bin is None or prometheus_bin is None:
        raise RuntimeError("needs prometheus and prometheus-alertmanager (scripts/install-services.sh)")
    with tempfile.TemporaryDirectory(prefix="bench-ttm-") as tmp:
        work = Path(tmp)
        up = subprocess.run(["bash", str(SCRIPT), "up", str(work / "cluster")], capture_output=True, text=True,
                            timeout=3600, check=False)
        if up.returncode != 0:
            raise RuntimeError(f"the control plane did not start: {up.stderr[-500:]}")
        try:
            return _measure(work, load(work / "cluster"), n, alertmanager_bin, prometheus_bin)
        finally:
            subprocess.run(["bash", str(SCRIPT), "down", str(work / "cluster")], capture_output=True, timeout=120)


def _measure(work: Path, cluster: Any, n: int, alertmanager_bin: str, prometheus_bin: str) -> dict[str, Any]:
    client = client_for(str(cluster.kubeconfig))
    ns, targets = f"ttm-{secrets.token_hex(3)}", [f"shop-{i}" for i in range(n)]
    kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": ns}})
    for target in targets:
        create(client, ns, {**workload("Deployment", target, f"shop/{target}:good", replicas=2)})
    while not all(rolled_out(client, "Deployment", ns, t) for t in targets):
        time.sleep(0.2)
    app = ImageApp(client, ns, targets).start()
    served = serve()
    loopback: LoopbackServer = next(served)
    loopback.route("/metrics", body=app.text)
    port = free_port()
    (work / "token").write_text(TOKEN)
    (work / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    prometheus_url = f"http://127.0.0.1:{port}"
    queries = {"requests": "sum(rate(http_requests_total{$selector}[$window]))",
               "errors": "sum(rate(http_requests_errors_total{$selector}[$window]))"}
    config = work / "hemostat.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"path": str(work / "ledger.db")}, "policy": str(work / "policy.yaml"), "sweeps": False,
        "kubernetes": {"kubeconfig": str(cluster.kubeconfig)}, "intake": {"token": {"file": str(work / "token")}},
        "targets": [{"name": t, "namespace": ns, "deployment": t, "probes": ["k8s-workload", "prometheus"],
                     "prometheus": {"url": prometheus_url, "window": "3s", "lookback": "2m", "step_s": 1,
                                    "queries": queries, "selector": f'target="{t}"'}} for t in targets]}))
    daemon = start_daemon(config)
    manager = start_alertmanager(alertmanager_bin, work / "alertmanager", f"{daemon.url}/webhook/alertmanager",
                                 work / "token")
    (work / "prometheus").mkdir()
    prometheus = PrometheusServer(binary=prometheus_bin, workdir=work / "prometheus", port=port)
    prometheus_config(prometheus, [loopback.url.removeprefix("http://") + "/metrics"], RULES,
                      [f"127.0.0.1:{manager.port}"])
    prometheus.start()
    try:
        time.sleep(3)  # a clean baseline in Prometheus before the first bad rollout
        incidents = [{"target": t, **_one(app, client, ns, t, work / "ledger.db", prometheus_url)} for t in targets]
    finally:
        prometheus.stop()
        manager.stop()
        daemon.stop()
        app.stop()
        served.close()
    result: dict[str, Any] = {"incidents": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in i.items()}
                                            for i in incidents]}
    for name in (*SPANS, "total"):
        values = [i[name] for i in incidents]
        result[f"{name}_p50_s"], result[f"{name}_p95_s"] = round(percentile(values, 50), 2), round(percentile(values, 95), 2)
    result["ratio"] = round(result["total_p50_s"] / GOAL_S, 3)
    result["ratio_means"] = f"p50 first failing request -> mitigation verified / the issue's goal ({GOAL_S:g} s)"
    return result
