"""Approvals and `diagnose --server` through the real TokenReview and SubjectAccessReview: the
daemon (`hemostat run`, a process) runs as the chart's ServiceAccount with a TokenRequest token;
engineers are the apiserver's static-token users — alice in hemostat:approvers, bound by the
chart's example approver Role, bob only in hemostat:dev — and a ServiceAccount. An approved
rollback is then executed by the daemon against the real Deployment controller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Proposal, Verdict
from tests.agent.daemon_harness import DaemonProcess, start_daemon
from tests.cluster import chart
from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S, RealCluster
from tests.cluster.kube import create, eventually, read, set_image, wait_rolled_out, workload
from tests.kubeapi.kubectl import kubectl_binary

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]
HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
PID = "p-cluster1"
Client = kubernetes.client.ApiClient


@dataclass
class World:
    tmp: Path
    ns: str
    cluster: RealCluster
    env: dict[str, str]
    daemon: DaemonProcess

    def kubeconfig(self, user: str, token: str | None = None) -> Path:
        return self.cluster.token_kubeconfig(self.tmp / f"{user}.kubeconfig", user, token)

    def hemostat(self, *args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "KUBECONFIG": str(kubeconfig)}
        return subprocess.run([HEMOSTAT, *args, "--server", self.daemon.url], env=env, capture_output=True,
                              text=True, timeout=120, cwd=self.tmp)


@pytest.fixture
def world(tmp_path: Path, real_cluster: RealCluster, admin_client: Client, ns: str) -> Iterator[World]:
    helm = subprocess.run(["bash", str(chart.ROOT / "scripts" / "fetch-helm.sh")], capture_output=True,
                          text=True, timeout=300, check=True).stdout.strip().splitlines()[-1]
    manifests = chart.render(helm, ns, "all-actions-values.yaml",
                             'approvals.approverRole.groups=["hemostat:approvers"]',
                             f'targets=[{{"name": "checkout", "deployment": "checkout", "namespace": "{ns}"}}]')
    chart.apply(kubectl_binary(), real_cluster, manifests)
    create(admin_client, ns, workload("Deployment", "checkout", "shop/checkout:1.0", replicas=2))
    wait_rolled_out(admin_client, "Deployment", ns, "checkout")
    set_image(admin_client, "Deployment", ns, "checkout", "shop/checkout:2.0")
    wait_rolled_out(admin_client, "Deployment", ns, "checkout")

    token = chart.service_account_token(admin_client, ns, "hemostat")
    daemon_kc = real_cluster.token_kubeconfig(tmp_path / "daemon.kubeconfig", "hemostat", token)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({
        "mode": "propose", "approvers": {"sources": ["kubernetes"], "groups": ["hemostat:approvers"]},
        "actions": {"rollback": {"approvals": 1}}}))
    (tmp_path / "token").write_text("webhook-token")
    config = tmp_path / "hemostat.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"path": str(tmp_path / "ledger.db")}, "sweeps": False, "policy": str(tmp_path / "policy.yaml"),
        "kubernetes": {"kubeconfig": str(daemon_kc)}, "intake": {"token": {"file": str(tmp_path / "token")}},
        "targets": [{"name": "checkout", "namespace": ns, "deployment": "checkout", "probes": ["k8s-workload"]}]}))
    env = {**os.environ, "PYTHONPATH": str(chart.ROOT)}
    for name in ("KUBECONFIG", "HEMOSTAT_SERVER", "HEMOSTAT_CONFIG"):
        env.pop(name, None)
    daemon = start_daemon(config, env)
    try:
        yield World(tmp_path, ns, real_cluster, env, daemon)
    finally:
        daemon.stop(signal.SIGKILL)
        chart.delete_cluster_scoped(admin_client, manifests)


def propose(world: World) -> SqliteLedger:
    ledger = world.daemon.ledger()
    now = datetime.now(UTC)
    proposal = Proposal(id=PID, target="checkout", action="rollback", subject="checkout", params={},
                        path=(DecisionStep("deploy", "recent"),), reason="2.0 went out before the errors",
                        created_at=now)
    ledger.add_proposal(proposal, Verdict("needs_approval", "propose", ("approval",), 1), now,
                        now + timedelta(hours=1))
    return ledger


def test_alice_approves_as_the_cluster_says_and_the_daemon_rolls_back_the_real_deployment(
        world: World, admin_client: Client) -> None:
    ledger = propose(world)
    try:
        done = world.hemostat("--user", "mallory", "approve", PID, kubeconfig=world.kubeconfig("alice"))
        assert done.returncode == 0, done.stderr
        assert "approved by alice (kubernetes)" in done.stdout  # the TokenReview's name, not --user
        [approval] = ledger.proposal(PID).approvals
        assert approval.identity.groups == ("hemostat:approvers", "hemostat:dev", "system:authenticated")
        eventually(lambda: ledger.proposal(PID).state in ("succeeded", "failed"), 90, "the execution")
        assert ledger.proposal(PID).state == "succeeded", [e.type for e in ledger.events(proposal_id=PID)]
    finally:
        ledger.close()
    deploy = read(admin_client, "Deployment", world.ns, "checkout")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:1.0"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_bob_is_refused_by_the_real_authorizer_naming_the_permission(world: World) -> None:
    ledger = propose(world)
    try:
        refused = world.hemostat("approve", PID, kubeconfig=world.kubeconfig("bob"))
        assert refused.returncode == 1
        # one answer for "no such proposal" and "not allowed" (issue 23, M1): nothing learned
        assert (f"answered 403: bob may not approve '{PID}': no such proposal, or RBAC grants you no"
                in refused.stderr)
        forged = world.hemostat("approve", PID, kubeconfig=world.kubeconfig("eve", token="not-a-token"))
        assert forged.returncode == 1 and "answered 401" in forged.stderr
        assert ledger.proposal(PID).approvals == ()
    finally:
        ledger.close()


def test_a_service_account_token_passes_rbac_but_not_the_policy_groups(world: World, admin_client: Client) -> None:
    core = kubernetes.client.CoreV1Api(admin_client)
    core.create_namespaced_service_account(world.ns, {"metadata": {"name": "oncall-bot"}})
    kubernetes.client.RbacAuthorizationV1Api(admin_client).create_namespaced_role_binding(world.ns, {
        "metadata": {"name": "oncall-bot-approver"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hemostat-approver"},
        "subjects": [{"kind": "ServiceAccount", "name": "oncall-bot", "namespace": world.ns}]})
    token = chart.service_account_token(admin_client, world.ns, "oncall-bot")
    ledger = propose(world)
    try:
        refused = world.hemostat("approve", PID, kubeconfig=world.kubeconfig("oncall-bot", token))
        assert refused.returncode == 1 and "answered 403" in refused.stderr
        assert (f"system:serviceaccount:{world.ns}:oncall-bot (kubernetes) is in none of "
                "approvers.groups (hemostat:approvers)") in refused.stderr
    finally:
        ledger.close()


def test_diagnose_server_runs_the_probes_with_the_daemons_service_account(world: World) -> None:
    done = world.hemostat("diagnose", "checkout", "--json", kubeconfig=world.kubeconfig("alice"))
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    assert [(p["probe"], p["ok"]) for p in doc["probes"]] == [("k8s-workload", True)]
    assert "recent_deploy" in {f["kind"] for f in doc["findings"]}
    refused = world.hemostat("diagnose", "checkout", kubeconfig=world.kubeconfig("bob"))
    assert refused.returncode == 1
    assert ("answered 403: bob may not diagnose target 'checkout': no such target, or RBAC grants you no "
            "create on diagnoses.hemostat.io named 'checkout'") in refused.stderr
