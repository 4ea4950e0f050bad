"""Pytest plugin: a real Kubernetes control plane (issue 21), started once per test run.

`real_cluster` (session) runs `scripts/cluster.sh up` in a temp dir: etcd, kube-apiserver (TLS,
Node+RBAC authorization, ServiceAccount token signing, ResourceQuota/ServiceAccount admission, a
static token file), kube-controller-manager, kube-scheduler and kwok, which keeps the nodes
worker-1..3 Ready and takes their pods to Running/Ready. The binaries are built from Go modules by
`scripts/build-cluster.sh` into `.cache/kube-<version>/bin/` the first time (about the cold build
time in docs/testing-kubernetes.md) and reused after. At the end `scripts/cluster.sh down`.

If the cluster cannot be built or started the test is skipped, or fails when
HEMOSTAT_REQUIRE_SERVICES=1. HEMOSTAT_TEST_CLUSTER_DIR names a directory where a cluster is already
up (`scripts/cluster.sh up DIR`): it is used as is and left running.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
# A cold build compiles kube-apiserver & co. from source (tens of minutes on 2 cores); a warm
# start takes seconds. The fixture waits for either.
BUILD_AND_START_TIMEOUT_S = 60 * 60


@dataclass(frozen=True)
class TokenUser:
    """A user of the apiserver's static token file."""

    name: str
    token: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class RealCluster:
    """A running control plane: where it is, and how to be its admin or one of its users."""

    dir: Path
    kubeconfig: Path
    server: str
    ca: Path
    admin_cert: Path
    admin_key: Path
    admin_token: str
    bin: Path
    startup_s: float
    users: dict[str, TokenUser] = field(default_factory=dict)

    def binary(self, name: str) -> Path:
        return self.bin / name

    def token_kubeconfig(self, path: Path, user: str, token: str | None = None) -> Path:
        """Write a kubeconfig at `path` that authenticates with a bearer token only: the static
        token of `user` (alice, bob, hemostat-admin-token), or `token` (e.g. a ServiceAccount's)."""
        bearer = token if token is not None else self.users[user].token
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: '{self.server}', certificate-authority: '{self.ca}'}}}}]\n"
            f"users: [{{name: u, user: {{token: '{bearer}'}}}}]\n"
            "contexts: [{name: u, context: {cluster: c, user: u, namespace: default}}]\n"
            "current-context: u\n")
        path.chmod(0o600)
        return path

def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def read_users(tokens_csv: Path) -> dict[str, TokenUser]:
    """token,user,uid,"group1,group2" lines (the apiserver's --token-auth-file format)."""
    users = {}
    for line in tokens_csv.read_text().splitlines():
        token, name, _uid, groups = line.split(",", 3)
        users[name] = TokenUser(name, token, tuple(groups.strip('"').split(",")))
    return users


def load(directory: Path) -> RealCluster:
    env = read_env(directory / "cluster.env")
    return RealCluster(
        dir=directory, kubeconfig=Path(env["KUBECONFIG"]), server=env["SERVER"], ca=Path(env["CA"]),
        admin_cert=Path(env["ADMIN_CERT"]), admin_key=Path(env["ADMIN_KEY"]),
        admin_token=env["ADMIN_TOKEN"], bin=Path(env["BIN"]),
        startup_s=float(env.get("STARTUP_SECONDS", "0")), users=read_users(Path(env["TOKENS_FILE"])))


def _remedy() -> str:
    return "needs Go (`go`) and the Go module proxy: scripts/build-cluster.sh builds it; see docs/testing-kubernetes.md"


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """A real control plane for the whole session (see the module docstring)."""
    given = os.environ.get("HEMOSTAT_TEST_CLUSTER_DIR")
    if given:
        yield load(Path(given))
        return
    directory = Path(tempfile.mkdtemp(prefix="hemostat-cluster-"))
    try:
        done = subprocess.run(["bash", str(SCRIPT), "up", str(directory)], capture_output=True, text=True,
                              timeout=BUILD_AND_START_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        subprocess.run(["bash", str(SCRIPT), "down", str(directory)], capture_output=True, check=False)
        missing(f"real control plane did not start: {e}", _remedy())
        raise
    if done.returncode != 0 or not (directory / "cluster.env").is_file():
        subprocess.run(["bash", str(SCRIPT), "down", str(directory)], capture_output=True, check=False)
        missing(f"real control plane did not start: {done.stderr.strip()[-3000:]}", _remedy())
    try:
        yield load(directory)
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(directory)], capture_output=True, timeout=120,
                       check=False)
