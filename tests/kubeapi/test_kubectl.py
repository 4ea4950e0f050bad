"""kubectl conformance: one real kubectl session, each command's answer compared with a cluster's.

The session (``kubectl/session.yaml``) covers apply (and ``--dry-run=server``), get with
server-side tables (``-o wide``, ``-o name``, jsonpath on defaulted fields), rollout
status/history/undo (old ReplicaSets reused, revision history, change-cause), scale, diff,
explain, describe, the protobuf creates (``create deployment``, ``create configmap``,
``autoscale``), patch, label, selectors and delete. With ``HEMOSTAT_E2E_KUBECONFIG`` the same
session runs against that cluster, which is how the expectations are kept honest.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kubeapi.fixtures import KubeApi, e2e_kubeconfig
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.kubectl import check, kubectl_binary, load_session, manifests, write_kubeconfig
from tests.kubeapi.server import FakeApiServer

TIMEOUT_S = 120  # one command; rollout status on a real cluster waits for pods


@pytest.fixture(scope="session")
def kubectl() -> str:
    return kubectl_binary()


def test_kubectl_session_answers_as_a_cluster_does(kubectl: str, kube_api: KubeApi,
                                                   kube_namespace: str, tmp_path: Path) -> None:
    replay(kubectl, kube_api, kube_namespace, tmp_path, "session.yaml")


@pytest.mark.fake_only
def test_kubectl_on_the_gitops_custom_resources(kubectl: str, fake_api: FakeApiServer,
                                                kube_namespace: str, tmp_path: Path) -> None:
    register_gitops_crds(fake_api)
    replay(kubectl, fake_api, kube_namespace, tmp_path, "gitops.yaml")


def replay(kubectl: str, kube_api: KubeApi, kube_namespace: str, tmp_path: Path, session: str) -> None:
    kubeconfig = e2e_kubeconfig() or str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url))
    docs = manifests()
    differences = []
    for step in load_session(session):
        stdin = yaml.safe_dump(docs[step.stdin]) if step.stdin else None
        done = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "--namespace", kube_namespace,
                               *step.cmd], input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
        problem = check(step, done.returncode, done.stdout, done.stderr)
        if problem:
            differences.append(f"{step.describe()}: {problem}")
    assert not differences, "kubectl saw a difference from a cluster:\n" + "\n".join(differences)
