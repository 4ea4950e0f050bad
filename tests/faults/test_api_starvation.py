"""Issue 23, H1 and H2, against `hemostat run` as a real process, the test apiserver doing the
TokenReviews and SubjectAccessReviews, and raw sockets on loopback:
- slow bodies on the approval API, remote diagnoses and Slack (with garbage and with valid
  credentials) must not cost the Alertmanager webhook a single signed alert;
- a TokenReview that hangs must stall neither /readyz, nor the webhook, nor the executor.
Each test prints the figures it saw for the closing note."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Proposal, Verdict
from agent.model.identity import Identity
from tests.agent.daemon_harness import DaemonProcess, alert_payload, start_daemon, wait_until
from tests.faults.abuse import Probe, request, send
from tests.kubeapi.grants import auth_delegator, grant_role
from tests.kubeapi.server import FakeApiServer
from tests.plugins.install import install_plugin

TOKEN = "starvation-webhook-token"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass
class World:
    tmp: Path
    fake: FakeApiServer
    config: Path
    env: dict[str, str]
    marker: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    fake = FakeApiServer()
    fake.start()
    auth_delegator(fake, {"kind": "ServiceAccount", "name": "hemostat", "namespace": "ops"})
    grant_role(fake, "shop", "diagnoser", [{"apiGroups": ["hemostat.io"], "resources": ["diagnoses"],
                                            "verbs": ["create"]}], ["sre"])
    fake.auth.add_token("t-alice", "alice", ("sre",))
    site = install_plugin(tmp_path / "site", "slow_marker.py",
                          "[hemostat.actions]\nslow-marker = slow_marker:SlowMarker\n")
    env = {**os.environ, "PYTHONPATH": f"{site}:{Path(__file__).resolve().parents[2]}"}
    env.pop("KUBECONFIG", None)
    kubeconfig = tmp_path / "daemon.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "hemostat", "user": {"token": fake.auth.service_account_token("ops", "hemostat")}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hemostat"}}]}))
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "slack-secret").write_text("slack-signing-secret")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({
        "mode": "propose", "approvers": {"sources": ["asserted", "kubernetes"]},
        "actions": {"slow-marker": {"approvals": 1}}}))
    config = tmp_path / "hemostat.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"path": "ledger.db"}, "sweeps": False, "policy": str(tmp_path / "policy.yaml"),
        "kubernetes": {"kubeconfig": str(kubeconfig), "request_timeout_s": 3},
        "intake": {"token": {"file": str(tmp_path / "token")}, "header_timeout_s": 10,
                   "body_timeout_s": 10},
        "slack": {"signing_secret": {"file": str(tmp_path / "slack-secret")}},
        "targets": [{"name": "checkout", "namespace": "shop", "probes": []}]}))
    try:
        yield World(tmp_path, fake, config, env, tmp_path / "marker")
    finally:
        fake.stop()


@pytest.fixture
def daemon(world: World) -> Iterator[DaemonProcess]:
    process = start_daemon(world.config, world.env)
    yield process
    process.stop(signal.SIGKILL)


def _slow(port: int, path: str, headers: str) -> socket.socket:
    """A request whose head is complete and whose body (100 bytes declared) stops after one."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: h\r\n{headers}Content-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n{".encode())
    return sock


def _answer(sock: socket.socket, timeout_s: float = 5) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _answer_once(sock: socket.socket) -> bytes:
    with sock:
        return _answer(sock)


def _webhook(daemon: DaemonProcess, n: int, timeout_s: float = 2) -> int | None:
    body = json.dumps(alert_payload(target="checkout", fingerprint=f"fp-{n}", group_key=f"g-{n}")).encode()
    return send(daemon.port, Probe("signed", request(body, f"Bearer {TOKEN}")), timeout=timeout_s)


def _reviews(fake: FakeApiServer) -> int:
    return sum(1 for method, path in list(fake.requests) if method == "POST" and path.startswith(REVIEWS))


def test_slow_bodies_on_the_api_and_slack_cannot_starve_the_signed_webhook(world: World,
                                                                         daemon: DaemonProcess) -> None:
    """H1: 32 slow bodies with `Authorization: Bearer x` once made the webhook answer 429; now
    the garbage token is refused by its TokenReview before the body, and valid tokens' and
    Slack's slow bodies hold only their own class's slots."""
    stamp = str(int(time.time()))
    garbage = [_slow(daemon.port, "/v1/proposals/approve", "Authorization: Bearer x\r\n") for _ in range(32)]
    valid = [_slow(daemon.port, "/v1/diagnose", "Authorization: Bearer t-alice\r\n") for _ in range(8)]
    slack = [_slow(daemon.port, "/slack/interactions",
                   f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n") for _ in range(8)]
    try:
        refused = [_answer(s) for s in garbage]
        statuses = [_webhook(daemon, n) for n in range(10)]
        over = _answer_once(_slow(daemon.port, "/v1/diagnose", "Authorization: Bearer t-alice\r\n"))
        slack_over = _answer_once(_slow(daemon.port, "/slack/interactions",
                                   f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n"))
        ready = daemon.get("/readyz")[0]
    finally:
        for sock in garbage + valid + slack:
            sock.close()
    print(f"\nstarvation: 32 garbage-token + 8 valid-token + 8 Slack slow bodies; webhooks {statuses}; "
          f"TokenReviews sent: {_reviews(world.fake)}")
    assert all(r[:13] in (b"HTTP/1.1 401 ", b"HTTP/1.1 429 ") for r in refused), refused  # before the body
    assert statuses == [202] * 10
    assert ready == 200
    for extra in (over, slack_over):  # the class is full: its own 429, with Retry-After
        assert extra.startswith(b"HTTP/1.1 429 ") and b"Retry-After: 1" in extra
    assert _reviews(world.fake) <= 3  # one per distinct token (x, alice): answers are cached


def _flood(port: int, path: str, body: bytes, token: str, answers: list[int | None]) -> None:
    try:
        answers.append(send(port, Probe("flood", request(body, f"Bearer {token}", path=path)), timeout=30))
    except OSError:
        answers.append(None)


def test_a_hanging_tokenreview_stalls_neither_readyz_nor_the_webhook_nor_the_executor(
        world: World, daemon: DaemonProcess) -> None:
    """H2: with TokenReview hanging, 4 approvals and 8 diagnoses with garbage tokens once made
    /readyz and the webhook time out and stopped the executor for 90 s and more."""
    world.fake.set_hang(REVIEWS, 120)
    answers: list[int | None] = []
    threads = [threading.Thread(target=_flood, args=(daemon.port, path, body, f"garbage-{i}", answers))
               for i, (path, body) in enumerate(
                   [("/v1/proposals/approve", b'{"id": "p-x"}')] * 4 + [("/v1/diagnose", b'{"target": "checkout"}')] * 8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: _reviews(world.fake) >= 4)  # the review pool's threads are all hanging
    ledger = SqliteLedger(world.config.parent / "ledger.db")
    try:
        now = datetime.now(UTC)
        ledger.add_proposal(Proposal(id="p-starve01", target="checkout", action="slow-marker",
                                     subject="checkout", params={"file": str(world.marker)},
                                     path=(DecisionStep("errors", "5xx"),), reason="mark", created_at=now),
                            Verdict("needs_approval", "propose", ("1",), 1), now, now + timedelta(hours=1))
        ledger.approve("p-starve01", Identity.asserted("carol"), now)
        ready = daemon.get("/readyz")  # urllib: its own timeout; the socket ones below are 2 s
        hook = _webhook(daemon, 99, timeout_s=2)
        health = send(daemon.port, Probe("ready", b"GET /readyz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
                      timeout=2)
        wait_until(lambda: world.marker.exists() and "done" in world.marker.read_text().split())
        executed = ledger.proposal("p-starve01").state
    finally:
        ledger.close()
        for thread in threads:
            thread.join(timeout=30)
    print(f"\nhanging TokenReview: /readyz {ready[0]}/{health}, webhook {hook}, proposal {executed}, "
          f"flood answers {sorted(answers, key=str)}")
    assert ready[0] == health == 200 and hook == 202
    assert executed in ("executing", "succeeded")
    assert sorted(answers, key=str) == [503] * 12  # each refused at its deadline, none hung


@pytest.mark.parametrize("stamp", ["\u00b2", "\u0661\u0662", "1e9", "-1", "9" * 40])
def test_a_slack_timestamp_that_is_not_ascii_digits_is_401_not_500(daemon: DaemonProcess,
                                                                    stamp: str) -> None:
    """L3: `X-Slack-Request-Timestamp: ²` passed str.isdigit(), then int() failed: an
    unauthenticated 500 and an error line in the log."""
    head = (f"POST /slack/interactions HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
            f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2\r\n\r\nab")
    assert send(daemon.port, Probe("slack", head.encode())) == 401
    assert "handler failed" not in daemon.log.read_text()


def test_every_apiserver_call_has_a_deadline(world: World) -> None:
    """H2: `kubernetes.request_timeout_s` was declared and never used; a call that sets no
    timeout of its own waited for a hung apiserver for as long as it hung."""
    from kubernetes import client
    from urllib3.exceptions import ReadTimeoutError

    from agent.diagnosis.registry import Registry
    from agent.diagnosis.wiring import build_app
    from agent.model.config import Config

    config = yaml.safe_load(world.config.read_text())
    config["kubernetes"]["request_timeout_s"] = 0.5
    app = build_app(Config.model_validate({**config, "policy": None}), Registry.discover())
    world.fake.set_hang("/api/v1/namespaces", 60)
    with pytest.raises(ReadTimeoutError):
        client.CoreV1Api(app.kube_provider()()).list_namespace()


def test_slack_can_get_a_port_of_its_own_that_serves_nothing_else(world: World) -> None:
    """L5: Slack's buttons needed internet ingress to the one port that also serves approvals,
    diagnoses and /metrics. With `slack.listen`, that port serves /slack/interactions only."""
    from tests.services import free_port

    slack_port = free_port()
    config = yaml.safe_load(world.config.read_text())
    config["slack"]["listen"] = f"127.0.0.1:{slack_port}"
    world.config.write_text(yaml.safe_dump(config))
    process = start_daemon(world.config, world.env)
    try:
        def status(port: int, method: str, path: str) -> int | None:
            head = f"{method} {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            return send(port, Probe("route", head.encode()))

        on_slack = {path: status(slack_port, method, path) for method, path in [
            ("POST", "/slack/interactions"), ("GET", "/healthz"), ("GET", "/metrics"),
            ("POST", "/v1/proposals/approve"), ("POST", "/v1/diagnose"), ("POST", "/webhook/alertmanager")]}
        on_main = status(process.port, "POST", "/slack/interactions")
    finally:
        process.stop(signal.SIGKILL)
    assert on_slack == {"/slack/interactions": 401, "/healthz": 200, "/metrics": 404,
                        "/v1/proposals/approve": 404, "/v1/diagnose": 404, "/webhook/alertmanager": 404}
    assert on_main == 404
