"""`hemostat diagnose TARGET --server URL`, for real: the CLI as a process, the daemon as a process,
the test apiserver doing TokenReview and SubjectAccessReview over RBAC, and a loopback dependency
that is down. The daemon runs the probes; the CLI prints what it found, and only someone RBAC
lets create diagnoses.hemostat.io for the target gets an answer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.ledger import open_ledger
from agent.model.config import StoreConfig
from tests.agent.daemon_harness import DaemonProcess, start_daemon, wait_until
from tests.kubeapi.grants import auth_delegator, grant_role
from tests.kubeapi.server import FakeApiServer
from tests.loopback import LoopbackServer

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
RBAC = "rbac.authorization.k8s.io"


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
    assert done.returncode == 3, done.stderr  # an incident
    doc = yaml.safe_load(done.stdout)
    assert [(p["probe"], p["ok"]) for p in doc["probes"]] == [("http-health", True)]
    down = [f for f in doc["findings"] if f["kind"] == "dependency_down"]
    assert down and down[0]["subject"] == "payments-api", doc["findings"]
    [incident] = world.incidents()
    assert doc["incident"] == incident.id and incident.target == "checkout"
    shown = subprocess.run([HEMOSTAT, "--config", str(world.config), "show", incident.id], env=world.env,
                           capture_output=True, text=True, timeout=60)
    assert re.search(r"diagnosis_requested +alice", shown.stdout), shown.stdout + shown.stderr
    human = world.diagnose(daemon.url, "checkout", kubeconfig=alice)  # the same, for a person
    assert human.returncode == 3 and "payments-api" in human.stdout


def test_no_ledger_asks_the_daemon_not_to_record(world: World, daemon: DaemonProcess) -> None:
    done = world.diagnose(daemon.url, "checkout", "--json", "--no-ledger",
                          kubeconfig=world.person("alice", "sre"))
    assert done.returncode == 3, done.stderr
    assert yaml.safe_load(done.stdout)["incident"] is None
    assert world.incidents() == []


def test_without_the_rbac_permission_the_answer_is_403_naming_it_and_nothing_runs(
        world: World, loopback: LoopbackServer, daemon: DaemonProcess) -> None:
    mallory = world.person("mallory", "developers")
    refused = world.diagnose(daemon.url, "checkout", kubeconfig=mallory)
    assert refused.returncode == 1
    assert "answered 403: mallory may not diagnose target 'checkout': no such target, or RBAC " \
           "grants you no create on diagnoses.hemostat.io named 'checkout'" in refused.stderr
    # issue 23, M1: the answer no longer tells an existing target ("in namespace 'shop'") from
    # a missing one ("cluster-wide")
    assert "shop" not in refused.stderr
    missing = world.diagnose(daemon.url, "kasse", kubeconfig=mallory)
    assert missing.stderr.replace("kasse", "checkout") == refused.stderr
    assert loopback.hits.get("/health", 0) == 0 and world.incidents() == []


def test_a_forged_token_is_401_and_an_unknown_target_404_only_for_who_may_diagnose_any(
        world: World, daemon: DaemonProcess) -> None:
    forged = world.diagnose(daemon.url, "checkout", kubeconfig=world.person("eve", token="i-made-this-up"))
    assert forged.returncode == 1 and "answered 401" in forged.stderr
    # as the apiserver: authorisation before existence, so a namespaced grant learns nothing
    guessed = world.diagnose(daemon.url, "kasse", kubeconfig=world.person("alice", "sre"))
    assert guessed.returncode == 1 and "answered 403: alice may not diagnose target 'kasse'" in guessed.stderr
    assert "cluster-wide" not in guessed.stderr
    world.fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "diagnose-all"},
                     "rules": [{"apiGroups": ["hemostat.io"], "resources": ["diagnoses"], "verbs": ["create"]}]})
    world.fake.seed({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "sre-all"},
                     "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "diagnose-all"},
                     "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "platform"}]})
    unknown = world.diagnose(daemon.url, "kasse", kubeconfig=world.person("carol", "platform"))
    assert unknown.returncode == 1
    assert "answered 404: no target named 'kasse' in the daemon's config" in unknown.stderr


def _post(url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/v1/diagnose", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_more_than_four_at_once_are_429_and_the_daemon_keeps_answering_meanwhile(
        world: World, loopback: LoopbackServer, daemon: DaemonProcess) -> None:
    loopback.route("/health", status=503, body="down", delay_s=2)
    token = world.fake.auth.add_token("token-alice", "alice", ("sre",))
    body = json.dumps({"target": "checkout", "record": False}).encode()
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(_post(daemon.url, token, body)))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    wait_until(lambda: loopback.inflight >= 4)  # four diagnoses are waiting on the dependency
    assert daemon.get("/readyz")[0] == 200
    assert loopback.inflight >= 4  # answered while they still wait: not queued behind them
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 200, 200, 200, 429, 429]


@pytest.mark.parametrize("body", [b"[" * 3000, b'{"target": "checkout\n"}', b'{"target": "a/b"}'])
def test_bodies_nested_past_the_parser_or_with_a_bad_name_are_400(
        world: World, daemon: DaemonProcess, body: bytes) -> None:
    token = world.fake.auth.add_token("token-alice", "alice", ("sre",))
    assert _post(daemon.url, token, body) == 400


def test_local_only_options_are_refused_with_server(world: World, daemon: DaemonProcess) -> None:
    refused = world.diagnose(daemon.url, "checkout", "--record", "x.yaml", kubeconfig=world.person("alice", "sre"))
    assert refused.returncode == 2 and "--record and --policy work on a local diagnosis" in refused.stderr


def test_the_client_s_own_problems_are_one_clear_line_each(world: World, tmp_path: Path) -> None:
    def kubeconfig(name: str, user: dict[str, Any]) -> Path:
        path = tmp_path / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": world.fake.url}}],
            "users": [{"name": "u", "user": user}], "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
        return path

    lost = world.diagnose("http://127.0.0.1:9", "checkout", kubeconfig=kubeconfig("lost", {"tokenFile": "/nonexistent/t"}))
    assert lost.returncode == 2 and "tokenFile: cannot read /nonexistent/t: No such file" in lost.stderr
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("{{{")
    garbled = world.diagnose("http://127.0.0.1:9", "checkout", kubeconfig=broken)
    assert garbled.returncode == 2 and "cannot load credentials" in garbled.stderr
    marker = tmp_path / "plugin-ran"
    plugin = tmp_path / "get-token.sh"
    plugin.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{\"apiVersion\": \"client.authentication.k8s.io/v1\", "
                      "\"kind\": \"ExecCredential\", \"status\": {\"token\": \"t\"}}'\n")
    plugin.chmod(0o755)
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                          "interactiveMode": "Never"}}
    refused = world.diagnose("http://10.1.2.3:9", "checkout", kubeconfig=kubeconfig("exec", exec_user))
    assert refused.returncode == 2 and "plain http sends your credential in clear text" in refused.stderr
    assert not marker.exists()  # refused before the plugin was asked for a credential (it may prompt)
    for done in (lost, garbled, refused):
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
