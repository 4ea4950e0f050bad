"""The fake and the real side by side: one scenario list of kubectl commands, run against the fake
apiserver (tests/kubeapi) and against the real control plane, each answer normalised the same
way (ages, hashes, namespace names, pod names) and compared. The differences are printed in the
test output; each must be one of KNOWN (with why it remains), and every KNOWN one must still
show — so a fix in the fake, or a change in the real server, is noticed."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S, RealCluster
from tests.kubeapi.kubectl import kubectl_binary, normalise, write_kubeconfig
from tests.kubeapi.server import FakeApiServer

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1'}\n"
EVENT = """
apiVersion: v1
kind: Event
metadata: {name: web.hemostat}
involvedObject: {apiVersion: apps/v1, kind: Deployment, name: web, namespace: NAMESPACE}
reason: HemostatRollback
message: rolled back to revision 1
type: Normal
source: {component: hemostat}
"""

# (what, kubectl arguments, stdin, which lines to compare: False all, True the header, "last")
SCENARIOS: list[tuple[str, list[str], str | None, bool | str]] = [
    ("apply", ["apply", "-f", "-"], DEPLOYMENT, False),
    ("rollout status", ["rollout", "status", "deployment/web", "--timeout=60s"], None, "last"),
    ("get deployment", ["get", "deployment", "web"], None, False),
    ("get deployment -o wide", ["get", "deployment", "web", "-o", "wide"], None, False),
    ("get replicasets", ["get", "replicasets", "-o", "name"], None, False),
    ("create configmap", ["create", "configmap", "cfg", "--from-literal=a=1"], None, False),
    ("patch configmap", ["patch", "configmap", "cfg", "-p", '{"data":{"b":"2"}}'], None, False),
    ("get configmaps -o name", ["get", "configmaps", "-o", "name"], None, False),
    ("apply --server-side (new object)", ["apply", "--server-side", "-f", "-"], CONFIGMAP, False),
    ("auth can-i patch deployments", ["auth", "can-i", "patch", "deployments"], None, False),
    ("create event elsewhere", ["create", "-f", "-"], EVENT.replace("NAMESPACE", "default"), False),
    ("create event", ["create", "-f", "-"], EVENT, False),
    ("get events (columns)", ["get", "events"], None, True),
    ("get the event", ["get", "events", "--field-selector", "reason=HemostatRollback"], None, False),
    ("get all -o name", ["get", "all", "-o", "name"], None, False),
    ("scale", ["scale", "deployment/web", "--replicas=3"], None, False),
    ("rollout history", ["rollout", "history", "deployment/web"], None, False),
    ("delete configmap", ["delete", "configmap", "cfg"], None, False),
]

# Differences that remain, and why (the fake simulates no kubelet, scheduler or event recorder).
KNOWN: dict[str, str] = {}

POD = re.compile(r"\bweb-<hash>-[a-z0-9]{5}\b")


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.start()
    yield server
    server.stop()


def run(kubectl: str, kubeconfig: str, namespace: str) -> dict[str, tuple[int, list[str]]]:
    answers = {}
    for what, args, stdin, header in SCENARIOS:
        done = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "--namespace", namespace, *args],
                              input=stdin and stdin.replace("NAMESPACE", namespace), capture_output=True,
                              text=True, timeout=120, check=False)
        text = (done.stdout + done.stderr).replace(namespace, "<namespace>")
        # the fake runs no scheduler or kubelets: no pods (docs/testing-kubernetes.md)
        lines = [POD.sub("web-<hash>-<pod>", line) for line in normalise(text) if not line.startswith("pod/")]
        answers[what] = (done.returncode, lines[-1:] if header == "last" else lines[:1] if header else lines)
    answers["get -w, after a change"] = watch_a_change(kubectl, kubeconfig, namespace)
    return answers


def watch_a_change(kubectl: str, kubeconfig: str, namespace: str) -> tuple[int, list[str]]:
    """`kubectl get configmap w -w` while the ConfigMap gains a key: the columns must hold."""
    base = [kubectl, "--kubeconfig", kubeconfig, "--namespace", namespace]
    subprocess.run([*base, "create", "configmap", "w", "--from-literal=a=1"], capture_output=True, check=True)
    watching = subprocess.Popen([*base, "get", "configmap", "w", "-w"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    assert watching.stdout is not None
    first = [watching.stdout.readline(), watching.stdout.readline()]  # header and the current row
    subprocess.run([*base, "patch", "configmap", "w", "-p", '{"data":{"b":"2"}}'], capture_output=True, check=True)
    changed = watching.stdout.readline()
    watching.terminate()
    watching.communicate(timeout=30)
    return 0, normalise("".join([*first, changed]))


def test_one_scenario_list_against_the_fake_and_the_real_server(
        fake: FakeApiServer, real_cluster: RealCluster, tmp_path: Path) -> None:
    kubectl = kubectl_binary()
    namespace = f"side-{secrets.token_hex(4)}"
    fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    subprocess.run([kubectl, "--kubeconfig", str(real_cluster.kubeconfig), "create", "namespace", namespace],
                   capture_output=True, check=True, timeout=60)
    try:
        on_fake = run(kubectl, str(write_kubeconfig(tmp_path / "fake.kubeconfig", fake.url)), namespace)
        on_real = run(kubectl, str(real_cluster.kubeconfig), namespace)
    finally:
        subprocess.run([kubectl, "--kubeconfig", str(real_cluster.kubeconfig), "delete", "namespace",
                        namespace, "--wait=false"], capture_output=True, timeout=60, check=False)
    assert on_fake.keys() == on_real.keys()
    differences = {what: (on_fake[what], on_real[what]) for what in on_fake if on_fake[what] != on_real[what]}
    report = [f"{what}:\n    fake: {fake_says}\n    real: {real_says}"
              + (f"\n    known: {KNOWN[what]}" if what in KNOWN else "\n    UNEXPLAINED")
              for what, (fake_says, real_says) in differences.items()]
    print("\nfake vs real, differences:\n" + ("\n".join(report) or "none"))
    assert set(differences) == set(KNOWN), "\n".join(report)
