"""Real kubectl is the judge: `kubectl auth whoami` and `kubectl auth can-i` against the fake.

kubectl sends no bearer token over plain HTTP, so these identify the user by impersonation
(`--as`, `--as-group`), which the fake allows exactly as RBAC allows the caller to impersonate.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.kubeapi.server import FakeApiServer
from tests.services import missing

pytestmark = pytest.mark.fake_only
ROOT = Path(__file__).resolve().parents[2]
RBAC = "rbac.authorization.k8s.io"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-helm.sh")], capture_output=True,
                          text=True, timeout=300, check=False)
    binary = Path(done.stdout.strip().splitlines()[-1]).parent / "kubectl" if done.returncode == 0 else None
    if binary is None or not binary.is_file():
        missing("no kubectl (scripts/fetch-helm.sh fetches it)", "run scripts/fetch-helm.sh")
    return str(binary)


@pytest.fixture
def kubectl(kubectl_binary: str, fake_api: FakeApiServer, tmp_path: Path) -> Kubectl:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake_api.url}}],
        "users": [{"name": "anyone", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "anyone"}}]}))
    _seed(fake_api)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl_binary, "--kubeconfig", str(config), *args], capture_output=True,
                              text=True, timeout=60, check=False)
    return run


def _seed(fake: FakeApiServer) -> None:
    """Anonymous may impersonate (a test cluster's admin, in effect); `sre` may patch checkout."""
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "impersonator"},
               "rules": [{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]})
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "impersonator"},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "impersonator"},
               "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "system:anonymous"}]})
    fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "rollback", "namespace": "shop"},
               "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["checkout"],
                          "verbs": ["get", "patch"]}]})
    fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "sre", "namespace": "shop"},
               "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "rollback"},
               "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "sre"}]})


def test_whoami_names_the_user_and_groups(kubectl: Kubectl) -> None:
    done = kubectl("auth", "whoami", "--as", "alice", "--as-group", "sre", "-o", "json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)["status"]["userInfo"]
    assert info == {"username": "alice", "groups": ["sre", "system:authenticated"]}


def test_can_i_follows_the_role_binding(kubectl: Kubectl) -> None:
    yes = kubectl("auth", "can-i", "patch", "deployments/checkout", "-n", "shop", "--as", "alice",
                  "--as-group", "sre")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    for args in (("patch", "deployments/cart", "-n", "shop"),   # not a named deployment
                 ("delete", "deployments/checkout", "-n", "shop"),  # not a granted verb
                 ("patch", "deployments/checkout", "-n", "default")):  # not its namespace
        no = kubectl("auth", "can-i", *args, "--as", "alice", "--as-group", "sre")
        assert (no.returncode, no.stdout.strip()) == (1, "no"), (args, no.stderr)
    outsider = kubectl("auth", "can-i", "patch", "deployments/checkout", "-n", "shop", "--as", "bob")
    assert outsider.stdout.strip() == "no"


def test_impersonating_without_rbac_permission_is_forbidden(kubectl: Kubectl,
                                                            fake_api: FakeApiServer) -> None:
    fake_api.store.remove(("rbac.authorization.k8s.io", "clusterrolebindings"), "", "impersonator")
    whoami = kubectl("auth", "whoami", "--as", "alice")
    assert whoami.returncode == 1 and "do not have permission" in whoami.stderr
    can_i = kubectl("auth", "can-i", "get", "pods", "--as", "alice")
    assert can_i.returncode == 1
    assert 'User "system:anonymous" cannot impersonate resource "users"' in can_i.stderr


def test_the_approval_question_can_be_asked_with_a_self_subject_access_review(
        kubectl: Kubectl, fake_api: FakeApiServer, tmp_path: Path) -> None:
    """hemostat.io is not a served API, so `kubectl auth can-i` cannot resolve it; the review
    docs/approvals.md shows asks exactly what the daemon's SubjectAccessReview asks."""
    fake_api.seed({"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "approver", "namespace": "shop"},
                   "rules": [{"apiGroups": ["hemostat.io"], "resources": ["mitigations"],
                              "resourceNames": ["rollback"], "verbs": ["approve"]}]})
    fake_api.seed({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
                   "metadata": {"name": "approver", "namespace": "shop"},
                   "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "approver"},
                   "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "sre"}]})
    review = tmp_path / "review.yaml"
    answers = []
    for action in ("rollback", "scale-up"):
        review.write_text(yaml.safe_dump({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": "hemostat.io", "resource": "mitigations",
                                            "verb": "approve", "name": action, "namespace": "shop"}}}))
        done = kubectl("create", "-f", str(review), "-o", "jsonpath={.status.allowed}",
                       "--validate=false",  # client-side schema check: needs the fake's OpenAPI
                       "--as", "alice", "--as-group", "sre")
        assert done.returncode == 0, done.stderr
        answers.append(done.stdout)
    assert answers == ["true", "false"]
