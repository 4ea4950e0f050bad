"""`hemostat config check` reports every problem of a config at once, each with its path;
`hemostat doctor` then asks each target's backends and the cluster's RBAC (as `kubectl auth can-i`)
and prints ok / failing and why, against a real loopback app and the fake apiserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubeapi.server import FakeApiServer
from tests.loopback import LoopbackServer

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
RBAC = "rbac.authorization.k8s.io"


def _hemostat(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HEMOSTAT_CONFIG")}
    return subprocess.run([HEMOSTAT, "--config", str(config), *args], capture_output=True, text=True,
                          timeout=120, env={**env, "NO_COLOR": "1"})


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_config_check_names_every_problem_with_its_path(tmp_path: Path) -> None:
    config = _write(tmp_path / "hemostat.yaml", {"targets": [
        {"name": "checkout", "hello": 1, "metrics": {}, "thresholds": {"error_rate": 3}},
        {"name": "Bad_Name", "deploy_repo": {"path": "/tmp/x", "branch": "-x"}}]})
    done = _hemostat(config, "config", "check")
    assert done.returncode == 2
    for where in ("targets.0.hello: Extra inputs are not permitted", "targets.0.metrics: give exactly one",
                  "targets.0.thresholds.error_rate:", "targets.1.name:", "targets.1.deploy_repo.branch:"):
        assert where in done.stderr, done.stderr
    assert "5 problems" in done.stderr


def test_config_check_finds_what_the_schema_cannot(tmp_path: Path, loopback: LoopbackServer) -> None:
    config = _write(tmp_path / "hemostat.yaml", {
        "policy": "missing-policy.yaml", "intake": {"token": {"env": "HEMOSTAT_TEST_NO_SUCH_TOKEN"}},
        "targets": [{"name": "checkout", "probes": ["http-health", "no-such-probe"],
                     "dependencies": [{"name": "payments", "url": loopback.route("/health")}]}]})
    done = _hemostat(config, "config", "check", "-o", "json")
    assert done.returncode == 2
    problems = {p["path"]: p["problem"] for p in json.loads(done.stdout)["problems"]}
    assert "missing-policy.yaml" in problems["policy"]
    assert "no probe named 'no-such-probe'" in problems["targets.0.probes.1"]
    assert problems["intake.token"] == "secret env:HEMOSTAT_TEST_NO_SUCH_TOKEN is not set"


def test_a_good_config_checks_ok(tmp_path: Path, loopback: LoopbackServer) -> None:
    config = _write(tmp_path / "hemostat.yaml", {"targets": [
        {"name": "checkout", "dependencies": [{"name": "payments", "url": loopback.route("/health")}]}]})
    done = _hemostat(config, "config", "check")
    assert done.returncode == 0 and done.stdout.strip() == f"{config}: ok", done.stderr


@pytest.fixture
def fake_api() -> Iterator[FakeApiServer]:
    api = FakeApiServer()
    api.start()
    yield api
    api.stop()


@pytest.fixture
def cluster(fake_api: FakeApiServer, tmp_path: Path) -> Path:
    """A kubeconfig for a service account that may read deployments and pods in `shop`, nothing else."""
    fake_api.seed({"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "reader", "namespace": "shop"},
                   "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
                             {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]}]})
    fake_api.seed({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "reader", "namespace": "shop"},
                   "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "hemostat", "namespace": "ops"}]})
    token = fake_api.auth.service_account_token("ops", "hemostat")
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake_api.url}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "sa", "namespace": "shop"}}]}))
    return path


def test_doctor_prints_each_probe_reachability_and_permission(cluster: Path, tmp_path: Path,
                                                              loopback: LoopbackServer) -> None:
    config = _write(tmp_path / "hemostat.yaml", {
        "kubernetes": {"kubeconfig": str(cluster)},
        "targets": [{"name": "checkout", "namespace": "shop", "deployment": "checkout",
                     "probes": ["http-health", "k8s-workload"],
                     "dependencies": [{"name": "payments", "url": loopback.route("/health")},
                                      {"name": "ledger-api", "url": "http://127.0.0.1:1/health",
                                       "timeout_s": 2}]}]})
    done = _hemostat(config, "doctor", "-o", "json")
    assert done.returncode == 1, done.stderr  # something is failing
    rows = {(r["probe"], r["check"]): r for r in json.loads(done.stdout)["rows"]}
    assert rows[("http-health", "reach")]["ok"] is True  # a down dependency is a finding, not a gap
    assert rows[("k8s-workload", "can-i get deployments.apps")]["ok"] is True
    assert rows[("k8s-workload", "can-i list pods")]["ok"] is True
    denied = rows[("k8s-workload", "can-i list replicasets.apps")]
    assert denied["ok"] is False and denied["why"]
    assert rows[("k8s-workload", "reach")]["ok"] is False  # the Deployment does not exist
    table = _hemostat(config, "doctor")
    assert table.returncode == 1
    assert "TARGET    PROBE" in table.stdout
    assert any(line.split()[2:4] == ["can-i", "list"] and "failing" in line for line in table.stdout.splitlines())


def test_doctor_without_a_cluster_says_so_once_per_probe_that_needs_it(tmp_path: Path) -> None:
    config = _write(tmp_path / "hemostat.yaml", {
        "kubernetes": {"kubeconfig": str(tmp_path / "no-kubeconfig")},
        "targets": [{"name": "checkout", "namespace": "shop", "deployment": "checkout",
                     "probes": ["k8s-workload"]}]})
    done = _hemostat(config, "doctor", "--json")
    assert done.returncode == 1
    rows = json.loads(done.stdout)["rows"]
    kube = [r for r in rows if r["check"] == "kubernetes"]
    assert len(kube) == 1 and kube[0]["ok"] is False and "no Kubernetes API" in kube[0]["why"]


def test_doctor_stops_at_a_broken_config_with_exit_2(tmp_path: Path) -> None:
    config = _write(tmp_path / "hemostat.yaml", {"targets": [{"name": "checkout", "hello": 1}]})
    done = _hemostat(config, "doctor")
    assert done.returncode == 2 and "targets.0.hello: Extra inputs are not permitted" in done.stderr
