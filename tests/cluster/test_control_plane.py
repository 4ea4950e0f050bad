"""The real control plane (tests/cluster/fixtures.py) does what a cluster does: the real kubectl
sees a v1.35 server, the controller-manager turns a Deployment into a ReplicaSet and pods that the
scheduler binds and kwok's nodes make Ready, TokenRequest issues ServiceAccount tokens the
apiserver accepts, RBAC denies an unbound user, and ResourceQuota admission rejects a pod over
quota."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S, RealCluster
from tests.kubeapi.kubectl import kubectl_binary

# The first test's setup may build the control plane from source (see the fixture).
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def kubectl_path() -> str:
    return kubectl_binary()


def run_kubectl(binary: str, kubeconfig: Path, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


@pytest.fixture
def kubectl(kubectl_path: str, real_cluster: RealCluster) -> Kubectl:
    """kubectl as the cluster's admin (client certificate, group system:masters)."""
    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_kubectl(kubectl_path, real_cluster.kubeconfig, *args, stdin=stdin, check=check)
    return run


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"cluster-{secrets.token_hex(4)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def wait_until(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:g}s")
        time.sleep(0.25)


def test_kubectl_sees_a_real_v1_35_server(kubectl: Kubectl, real_cluster: RealCluster) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.35."), version
    assert version["serverVersion"]["major"] == "1" and version["serverVersion"]["minor"] == "35"
    nodes = get_json(kubectl, "nodes")["items"]
    assert {n["metadata"]["name"] for n in nodes} >= {"worker-1", "worker-2", "worker-3"}
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
        assert node["status"]["allocatable"]["cpu"] == "4"
    assert real_cluster.server.startswith("https://127.0.0.1:")


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: 100m, memory: 64Mi}}
"""


def test_deployment_gets_a_replicaset_and_ready_pods(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=90s")

    deployment = get_json(kubectl, "-n", namespace, "deployment", "web")
    assert deployment["status"]["readyReplicas"] == 3
    replicasets = get_json(kubectl, "-n", namespace, "replicasets", "-l", "app=web")["items"]
    assert len(replicasets) == 1
    owner = replicasets[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Deployment", "web", deployment["metadata"]["uid"])

    pods = get_json(kubectl, "-n", namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["name"] == replicasets[0]["metadata"]["name"]
        assert pod["spec"]["nodeName"].startswith("worker-")  # bound by the real scheduler
        assert pod["status"]["phase"] == "Running"
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == "True"
        # the ServiceAccount admission plugin mounted the token volume
        assert pod["spec"]["serviceAccountName"] == "default"
        assert any(v.get("projected") for v in pod["spec"]["volumes"])


def test_token_request_issues_a_service_account_token_the_apiserver_accepts(
        kubectl: Kubectl, kubectl_path: str, real_cluster: RealCluster, namespace: str, tmp_path: Path) -> None:
    kubectl("create", "serviceaccount", "-n", namespace, "reader")
    token = kubectl("create", "token", "-n", namespace, "reader", "--duration=10m").stdout.strip()
    assert token.count(".") == 2  # a signed JWT

    as_sa = real_cluster.token_kubeconfig(tmp_path / "sa.kubeconfig", "reader", token=token)
    who = json.loads(run_kubectl(kubectl_path, as_sa, "auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    denied = run_kubectl(kubectl_path, as_sa, "get", "pods", "-n", namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

    kubectl("create", "rolebinding", "-n", namespace, "reader-view", "--clusterrole=view",
            f"--serviceaccount={namespace}:reader")
    wait_until(lambda: run_kubectl(kubectl_path, as_sa, "get", "pods", "-n", namespace,
                                   check=False).returncode == 0, 30, "the RoleBinding to take effect")


def test_rbac_denies_an_unbound_user_and_allows_a_bound_one(
        kubectl: Kubectl, kubectl_path: str, real_cluster: RealCluster, namespace: str, tmp_path: Path) -> None:
    bob = real_cluster.token_kubeconfig(tmp_path / "bob.kubeconfig", "bob")
    alice = real_cluster.token_kubeconfig(tmp_path / "alice.kubeconfig", "alice")
    who = json.loads(run_kubectl(kubectl_path, bob, "auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == "bob"
    assert "hemostat:dev" in who["status"]["userInfo"]["groups"]

    denied = run_kubectl(kubectl_path, bob, "get", "secrets", "-n", namespace, check=False)
    assert denied.returncode != 0
    assert 'User "bob" cannot list resource "secrets"' in denied.stderr
    assert run_kubectl(kubectl_path, bob, "auth", "can-i", "delete", "pods", "-n", namespace,
                       check=False).stdout.strip() == "no"

    kubectl("create", "rolebinding", "-n", namespace, "approvers-edit", "--clusterrole=edit",
            "--group=hemostat:approvers")
    wait_until(lambda: run_kubectl(kubectl_path, alice, "auth", "can-i", "delete", "pods", "-n", namespace,
                                   check=False).stdout.strip() == "yes", 30, "alice's group binding")
    assert run_kubectl(kubectl_path, bob, "auth", "can-i", "delete", "pods", "-n", namespace,
                       check=False).stdout.strip() == "no"


QUOTA = """
apiVersion: v1
kind: ResourceQuota
metadata: {name: small}
spec:
  hard: {requests.cpu: "1", pods: "5"}
"""


def pod(name: str, cpu: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox",
                                                "resources": {"requests": {"cpu": cpu}}}]}})


def test_resource_quota_admission_rejects_a_pod_over_quota(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=QUOTA)
    # admission checks against the quota's status, which the controller-manager fills in first
    wait_until(lambda: bool(get_json(kubectl, "-n", namespace, "resourcequota", "small")
                            .get("status", {}).get("hard")), 30, "the quota's status")

    kubectl("apply", "-n", namespace, "-f", "-", stdin=pod("first", "600m"))
    rejected = kubectl("apply", "-n", namespace, "-f", "-", stdin=pod("second", "600m"), check=False)
    assert rejected.returncode != 0
    assert "exceeded quota: small" in rejected.stderr and "requests.cpu" in rejected.stderr
    used = get_json(kubectl, "-n", namespace, "resourcequota", "small")["status"]["used"]
    assert used["requests.cpu"] == "600m" and used["pods"] == "1"
