"""The chart's RBAC on the real cluster: render it with the real helm, apply its ServiceAccount,
Roles and bindings, and hand out a TokenRequest token for that ServiceAccount; read the
apiserver's audit log (scripts/cluster.sh writes one for ServiceAccounts and the static users)
to list the calls a user made, and `kubectl auth can-i --list` to list what it holds."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from tests.cluster.fixtures import RealCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hemostat"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


def render(helm: str, namespace: str, values: str, *sets: str) -> list[dict[str, Any]]:
    args = [helm, "template", "hemostat", str(CHART), "--namespace", namespace, "--kube-version", "1.35.0",
            "--values", str(CHART / "ci" / values)]
    for item in sets:
        args += ["--set-json", item]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc and doc["kind"] in RBAC_KINDS]


def apply(kubectl: str, cluster: RealCluster, manifests: list[dict[str, Any]]) -> None:
    subprocess.run([kubectl, "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-"],
                   input=yaml.safe_dump_all(manifests), capture_output=True, text=True, timeout=60, check=True)


def delete_cluster_scoped(client: kubernetes.client.ApiClient, manifests: list[dict[str, Any]]) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)
    for doc in manifests:
        if doc["kind"] == "ClusterRoleBinding":
            rbac.delete_cluster_role_binding(doc["metadata"]["name"])
        elif doc["kind"] == "ClusterRole":
            rbac.delete_cluster_role(doc["metadata"]["name"])


def service_account_token(client: kubernetes.client.ApiClient, namespace: str, name: str) -> str:
    request = {"spec": {"expirationSeconds": 3600}}
    answer = kubernetes.client.CoreV1Api(client).create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)


def token_client(cluster: RealCluster, token: str) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    configuration.host, configuration.ssl_ca_cert = cluster.server, str(cluster.ca)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(configuration)


@dataclass(frozen=True, order=True)
class Call:
    """One audited request: what RBAC judged (verb, group, resource[/sub], name) and its answer."""

    verb: str
    group: str
    resource: str
    name: str
    code: int


def audited(cluster: RealCluster, user: str) -> list[Call]:
    calls = []
    for line in (cluster.dir / "logs" / "audit.log").read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != user or event["stage"] != "ResponseComplete":
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", event["requestURI"])
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        calls.append(Call(event["verb"], ref.get("apiGroup", ""), resource, ref.get("name", ""),
                          int(event.get("responseStatus", {}).get("code", 0))))
    return calls


@dataclass(frozen=True)
class Grant:
    """One row of `kubectl auth can-i --list`: resource.group, names, verbs."""

    resource: str
    names: tuple[str, ...]
    verbs: tuple[str, ...]


ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]$")


def can_i_list(kubectl: str, cluster: RealCluster, user: str, namespace: str) -> list[Grant]:
    """The resource rows (non-resource URLs are the cluster's defaults for every authenticated user)."""
    done = subprocess.run([kubectl, "--kubeconfig", str(cluster.kubeconfig), "auth", "can-i", "--list",
                           "--as", user, "-n", namespace, "--no-headers"],
                          capture_output=True, text=True, timeout=60, check=True)
    grants = []
    for line in done.stdout.splitlines():
        match = ROW.match(line.strip() if line.startswith(" ") else line)
        assert match or line.startswith(" "), f"unexpected can-i row: {line!r}"
        if match and match[1] and not line.startswith(" "):
            grants.append(Grant(match[1], tuple(match[3].split()), tuple(match[4].split())))
    return grants
