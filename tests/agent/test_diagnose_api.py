"""`hemostat diagnose TARGET --server URL`, for real: the CLI as a process, the daemon as a process,
the test apiserver doing TokenReview and SubjectAccessReview over RBAC, and a loopback dependency
that is down. The daemon runs the probes; the CLI prints what it found, and only someone RBAC
lets create diagnoses.hemostat.io for the target gets an answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import StoreConfig
from agent.ledger import open_ledger
from tests.agent.daemon_harness import DaemonProcess, start_daemon
from tests.kubeapi.grants import auth_delegator, grant_role
from tests.kubeapi.server import FakeApiServer
from tests.loopback import LoopbackServer

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")


@dataclass
class World:
    tmp: Path
    fake: FakeApiServer
    config: Path
    env: dict[str, str]

    def person(self, name: str, *groups: str, token: str | None = None) -> Path:
        token = token or self.fake.auth.add_token(f"token-{name}", name, groups)
        path = self.tmp / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.fake.url}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": name}}]}))
        return path

    def diagnose(self, server: str, *args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "KUBECONFIG": str(kubeconfig)}
        env.pop("HEMOSTAT_CONFIG", None)  # the client needs no config: the daemon has it
        return subprocess.run([HEMOSTAT, "diagnose", *args, "--server", server], env=env,
                              capture_output=True, text=True, timeout=60, cwd=self.tmp / "elsewhere")

    def incidents(self) -> list[Any]:
        ledger = open_ledger(StoreConfig(path=self.tmp / "ledger.db"))
        try:
            return list(ledger.incidents())
        finally:
            ledger.close()


def _seed_rbac(fake: FakeApiServer) -> None:
    grant_role(fake, "shop", "diagnoser", [{"apiGroups": ["hemostat.io"], "resources": ["diagnoses"],
                                            "resourceNames": ["checkout"], "verbs": ["create"]}], ["sre"])
    auth_delegator(fake, {"kind": "ServiceAccount", "name": "hemostat", "namespace": "ops"})


@pytest.fixture
def world(tmp_path: Path, loopback: LoopbackServer) -> Iterator[World]:
    fake = FakeApiServer()
    fake.start()
    _seed_rbac(fake)
    (tmp_path / "elsewhere").mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for name in ("KUBECONFIG", "HEMOSTAT_SERVER", "HEMOSTAT_CONFIG"):
        env.pop(name, None)
    world = World(tmp_path, fake, tmp_path / "hemostat.yaml", env)
    daemon_kc = world.person("hemostat", token=fake.auth.service_account_token("ops", "hemostat"))
    (tmp_path / "token").write_text("webhook-token")
    world.config.write_text(yaml.safe_dump({
        "store": {"path": str(tmp_path / "ledger.db")}, "sweeps": False,
        "kubernetes": {"kubeconfig": str(daemon_kc)},
        "intake": {"token": {"file": str(tmp_path / "token")}},
        "targets": [{"name": "checkout", "namespace": "shop", "probes": ["http-health"],
                     "dependencies": [{"name": "payments-api",
                                       "url": loopback.route("/health", status=503, body="down")}]}]}))
    try:
        yield world
    finally:
        fake.stop()


@pytest.fixture
def daemon(world: World) -> Iterator[DaemonProcess]:
    process = start_daemon(world.config, world.env)
    yield process
    process.stop(signal.SIGKILL)


def test_the_daemon_diagnoses_for_an_engineer_rbac_allows_and_records_it_as_theirs(
        world: World, daemon: DaemonProcess) -> None:
    alice = world.person("alice", "sre")
    done = world.diagnose(daemon.url, "checkout", "--json", kubeconfig=alice)
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    assert [(p["probe"], p["ok"]) for p in doc["probes"]] == [("http-health", True)]
    down = [f for f in doc["findings"] if f["kind"] == "dependency_down"]
    assert down and down[0]["subject"] == "payments-api", doc["findings"]
    [incident] = world.incidents()
    assert doc["incident"] == incident.id and incident.target == "checkout"
    human = world.diagnose(daemon.url, "checkout", kubeconfig=alice)  # the same, for a person
    assert human.returncode == 0 and "payments-api" in human.stdout


def test_no_ledger_asks_the_daemon_not_to_record(world: World, daemon: DaemonProcess) -> None:
    done = world.diagnose(daemon.url, "checkout", "--json", "--no-ledger",
                          kubeconfig=world.person("alice", "sre"))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["incident"] is None
    assert world.incidents() == []


def test_without_the_rbac_permission_the_answer_is_403_naming_it_and_nothing_runs(
        world: World, loopback: LoopbackServer, daemon: DaemonProcess) -> None:
    refused = world.diagnose(daemon.url, "checkout", kubeconfig=world.person("mallory", "developers"))
    assert refused.returncode == 1
    assert "answered 403: mallory may not create target 'checkout': RBAC grants no create on " \
           "diagnoses.hemostat.io named 'checkout' in namespace 'shop'" in refused.stderr
    assert loopback.hits.get("/health", 0) == 0 and world.incidents() == []


def test_a_forged_token_is_401_and_an_unknown_target_404(world: World, daemon: DaemonProcess) -> None:
    forged = world.diagnose(daemon.url, "checkout", kubeconfig=world.person("eve", token="i-made-this-up"))
    assert forged.returncode == 1 and "answered 401" in forged.stderr
    unknown = world.diagnose(daemon.url, "kasse", kubeconfig=world.person("alice", "sre"))
    assert unknown.returncode == 1
    assert "answered 404: no target named 'kasse' in the daemon's config" in unknown.stderr


def test_local_only_options_are_refused_with_server(world: World, daemon: DaemonProcess) -> None:
    refused = world.diagnose(daemon.url, "checkout", "--record", "x.yaml", kubeconfig=world.person("alice", "sre"))
    assert refused.returncode == 2 and "--record and --policy work on a local diagnosis" in refused.stderr
