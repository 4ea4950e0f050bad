"""A daemon with a Kubernetes identity source and a ledger holding two incidents in two
namespaces, for the read API and web view tests: the test apiserver does TokenReview and
SubjectAccessReview over real RBAC objects; the daemon runs as `hemostat run`.

RBAC: group `sre` may get/list incidents and mitigations in namespace `shop` (and approve
there); nobody may read namespace `pay`. The checkout incident carries an alert whose label
is an XSS attempt, evidence, and a proposal of the slow-marker plugin action waiting for one
approval.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from agent.execution.approvals import EXECUTOR_ROLE
from agent.ledger import IncidentRecord
from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Finding, Proposal, Severity, Verdict
from tests.agent.daemon_harness import DaemonProcess, start_daemon
from tests.kubeapi.grants import auth_delegator, grant_role
from tests.kubeapi.server import FakeApiServer
from tests.plugins.install import install_plugin

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
POLICY = {"mode": "propose", "approvers": {"sources": ["kubernetes"], "groups": ["sre"]},
          "actions": {"slow-marker": {"approvals": 1}}}
READ = {"apiGroups": ["hemostat.io"], "resources": ["incidents", "mitigations"], "verbs": ["get", "list"]}
APPROVE = {"apiGroups": ["hemostat.io"], "resources": ["mitigations"], "verbs": ["approve", "reject"]}


@dataclass
class ReadWorld:
    tmp: Path
    fake: FakeApiServer
    config: Path
    env: dict[str, str]
    checkout: IncidentRecord
    billing: IncidentRecord
    proposal_id: str

    def ledger(self) -> SqliteLedger:
        return SqliteLedger(self.tmp / "ledger.db")

    def person(self, name: str, *groups: str) -> Path:
        path = self.tmp / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(self.fake.url, name,
                                                  {"token": self.fake.auth.add_token(f"token-{name}", name, groups)})))
        return path

    def hemostat(self, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "HEMOSTAT_CONFIG": str(self.config), "NO_COLOR": "1"}
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return subprocess.run([HEMOSTAT, *args], env=env, capture_output=True, text=True, timeout=60)


def kubeconfig(server: str, user: str, credential: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": server}}],
            "users": [{"name": user, "user": credential}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": user}}]}


def build(tmp: Path, fake: FakeApiServer) -> ReadWorld:
    grant_role(fake, "shop", "reader", [READ, APPROVE], ["sre"])
    fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pay"}})
    auth_delegator(fake, {"kind": "ServiceAccount", "name": "hemostat", "namespace": "ops"})
    site = install_plugin(tmp / "site", "slow_marker.py", "[hemostat.actions]\nslow-marker = slow_marker:SlowMarker\n")
    env = {**os.environ, "PYTHONPATH": f"{site}:{Path(__file__).resolve().parents[2]}"}
    env.pop("KUBECONFIG", None)
    env.pop("HEMOSTAT_SERVER", None)
    daemon_kc = tmp / "daemon.kubeconfig"
    daemon_kc.write_text(yaml.safe_dump(kubeconfig(fake.url, "hemostat", {
        "token": fake.auth.service_account_token("ops", "hemostat")})))
    (tmp / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    (tmp / "token").write_text("webhook-token")
    config = tmp / "hemostat.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"path": str(tmp / "ledger.db")}, "sweeps": False, "policy": str(tmp / "policy.yaml"),
        "kubernetes": {"kubeconfig": str(daemon_kc)}, "intake": {"token": {"file": str(tmp / "token")}},
        "targets": [{"name": "checkout", "namespace": "shop", "probes": []},
                    {"name": "billing", "namespace": "pay", "probes": []}]}))
    ledger = SqliteLedger(tmp / "ledger.db")
    try:
        checkout, billing, pid = _seed(ledger, tmp / "marker")
    finally:
        ledger.close()
    return ReadWorld(tmp, fake, config, env, checkout, billing, pid)


def _seed(ledger: SqliteLedger, marker: Path) -> tuple[IncidentRecord, IncidentRecord, str]:
    now = datetime.now(UTC)
    opened = now - timedelta(minutes=12)
    checkout = ledger.open_incident(IncidentRecord(
        "inc-read0001", "checkout", f"SEV-2 checkout: 5xx error ratio 18% {EVIL}", "opened", 2, opened, opened,
        "g|checkout"), "hemostat")
    billing = ledger.open_incident(IncidentRecord(
        "inc-read0002", "billing", "SEV-1 billing: payments failing", "opened", 1, opened, opened,
        "g|billing"), "hemostat")
    ledger.append("alert_fired", "alertmanager", opened, incident_id=checkout.id, data={"alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate", "team": EVIL}, "summary": EVIL}]})
    finding = Finding("error_spike", "checkout", Severity.SEV2, now - timedelta(minutes=10),
                      "5xx ratio 18% (baseline 0.4%)", "app-metrics",
                      evidence=("502 Bad Gateway from /api/cart x 412",))
    ledger.append("finding", "hemostat", now - timedelta(minutes=10), incident_id=checkout.id,
                  data=finding.to_json())
    ledger.set_incident_status(checkout.id, "identified", "hemostat", now - timedelta(minutes=9))
    proposal = Proposal(id="p-read0001", target="checkout", action="slow-marker", subject="checkout",
                        params={"file": str(marker)}, path=(DecisionStep("errors", "5xx above baseline"),),
                        reason="the errors began with the deploy", created_at=now - timedelta(minutes=9),
                        incident_id=checkout.id, support=("errors began 40 s after deploy abc123",),
                        against=("no pod restarts",))
    ledger.add_proposal(proposal, Verdict("needs_approval", "propose", ("needs 1 approval from sre",), 1),
                        now - timedelta(minutes=9), now + timedelta(hours=2))
    return ledger.incident(checkout.id), billing, proposal.id


def serve_world(tmp: Path) -> Iterator[ReadWorld]:
    """The world on a fresh fake apiserver, stopped afterwards (a fixture body: `yield from`)."""
    fake = FakeApiServer()
    fake.start()
    try:
        yield build(tmp, fake)
    finally:
        fake.stop()


def follower_daemon(world: ReadWorld) -> Iterator[DaemonProcess]:
    """A daemon that follows: the test holds the executor's lead and beats as a live leader of
    another replica would, so an approved proposal stays approved and the ledger changes only
    when a test changes it (a fixture body: `yield from`)."""
    leader = world.ledger()
    assert leader.try_lead("other-replica")
    leader.beat(EXECUTOR_ROLE, "other-replica", datetime.now(UTC))
    process = start_daemon(world.config, world.env)
    yield process
    process.stop(signal.SIGKILL)
    leader.close()
