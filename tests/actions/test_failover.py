"""failover: a real config file, a loopback flag service, and the fake apiserver's ConfigMaps."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from actions.failover import FailoverAction
from agent.model import (
    DependencySpec,
    FallbackSpec,
    PermanentError,
    Plan,
    Proposal,
    SecretRef,
    TargetSpec,
    TemporaryError,
)
from agent.model.context import ActionContext
from tests.kubeapi import fixtures as kube_fixtures

# the fake apiserver's fixtures, used here until tests/conftest.py lists them as a plugin
kube_api, kube_client, kube_namespace = (kube_fixtures.kube_api, kube_fixtures.kube_client,
                                         kube_fixtures.kube_namespace)

PRIMARY, SECONDARY = "https://api.stripe.com", "https://api.adyen.com"
TOKEN_ENV, TOKEN = "HEMOSTAT_TEST_FLAG_TOKEN", "flag-token-s3cr3t"


def _ctx(namespace: str = "default", **fallback: Any) -> ActionContext:
    spec = FallbackSpec(key=fallback.pop("key", "payments.endpoint"), primary=PRIMARY,
                        secondary=SECONDARY, **fallback)
    dep = DependencySpec(name="stripe", url="http://127.0.0.1:9/health", fallback=spec)
    return ActionContext(target=TargetSpec(name="checkout", namespace=namespace, dependencies=[dep]))


def _run(step: str, ctx: ActionContext, plan: Plan | None = None) -> Any:
    action = FailoverAction()
    if plan is None:
        proposal = Proposal(id="p1", target="checkout", action="failover", subject="stripe",
                            params={}, path=(), reason="stripe is down", created_at=datetime.now(UTC))
        return asyncio.run(action.plan(proposal, ctx))
    return asyncio.run(getattr(action, step)(plan, ctx))


def _round_trip(ctx: ActionContext) -> list[Any]:
    """plan, execute, execute again, verify, revert, revert again: the outcomes' facts."""
    plan = _run("plan", ctx)
    return [plan, *(_run(step, ctx, plan) for step in ("execute", "execute", "verify", "revert", "revert"))]


YAML = f"""# payments routing: edited by hand and by Hemostat
payments:
  endpoint: {PRIMARY}   # primary provider
  timeout_s: 5
other: keep
"""


def test_yaml_file_switches_in_place_keeping_comments_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML)
    path.chmod(0o640)
    plan, first, second, verified, reverted, again = _round_trip(_ctx(backend="file", path=path))
    assert plan.summary == (f"fail stripe over: file {path} key payments.endpoint: {PRIMARY} -> {SECONDARY}")
    assert (plan.changes[0].before, plan.changes[0].after) == (PRIMARY, SECONDARY)
    assert first.facts["changed"] and not second.facts["changed"]
    assert verified.ok and verified.detail == f"file {path} key payments.endpoint is '{SECONDARY}'"
    assert reverted.facts["changed"] and not again.facts["changed"]
    assert path.read_text() == YAML and path.stat().st_mode & 0o777 == 0o640
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_yaml_file_holds_the_secondary_while_failed_over(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML)
    ctx = _ctx(backend="file", path=path)
    _run("execute", ctx, _run("plan", ctx))
    assert path.read_text() == YAML.replace(PRIMARY, SECONDARY)


def test_json_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"payments": {"endpoint": PRIMARY, "retries": 3}}))
    ctx = _ctx(backend="file", path=path)
    _run("execute", ctx, _run("plan", ctx))
    assert json.loads(path.read_text()) == {"payments": {"endpoint": SECONDARY, "retries": 3}}
    _run("revert", ctx, _run("plan", ctx))
    assert json.loads(path.read_text())["payments"]["endpoint"] == PRIMARY


def test_env_file_keeps_quotes_and_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "payments.env"
    path.write_text(f'# routing\nexport PAYMENTS_URL="{PRIMARY}"\nOTHER=1\n')
    ctx = _ctx(backend="file", path=path, key="PAYMENTS_URL")
    _run("execute", ctx, _run("plan", ctx))
    assert path.read_text() == f'# routing\nexport PAYMENTS_URL="{SECONDARY}"\nOTHER=1\n'


def test_dry_run_validates_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML)
    ctx = _ctx(backend="file", path=path)
    outcome = _run("dry_run", ctx, _run("plan", ctx))
    assert outcome.ok and outcome.detail.startswith("would switch file")
    assert path.read_text() == YAML


def test_a_value_someone_else_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML.replace(PRIMARY, "https://api.braintree.com"))
    with pytest.raises(PermanentError) as err:
        _run("plan", _ctx(backend="file", path=path))
    assert str(err.value) == (
        f"file {path} key payments.endpoint is 'https://api.braintree.com', neither primary "
        f"'{PRIMARY}' nor secondary '{SECONDARY}': someone else changed it, not touching it")


def test_missing_file_is_a_clear_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as err:
        _run("plan", _ctx(backend="file", path=tmp_path / "nope.yaml"))
    assert str(err.value) == f"file {tmp_path / 'nope.yaml'} key payments.endpoint: cannot read: " \
                             "No such file or directory"


@dataclass
class FlagServer:
    """A flag service on loopback: GET the flags, PUT/POST `{key: value}` with a bearer token."""

    flags: dict[str, str] = field(default_factory=lambda: {"payments.endpoint": PRIMARY})
    writes: list[dict[str, str]] = field(default_factory=list)
    status: int | None = None  # force an answer (503, ...)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/api/flags/checkout?env=prod"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        auth = req.headers.get("Authorization", "")
        if self.status or auth != f"Bearer {TOKEN}":
            code = self.status or 401
            return self._answer(req, code, {"error": "unauthorized", "got": auth})
        if req.command in {"PUT", "POST"}:
            body = json.loads(req.rfile.read(int(req.headers["Content-Length"])))
            self.writes.append(body)
            self.flags.update(body)
        return self._answer(req, 200, self.flags)

    def _answer(self, req: BaseHTTPRequestHandler, code: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


@pytest.fixture
def flags(monkeypatch: pytest.MonkeyPatch) -> Iterator[FlagServer]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    owner = FlagServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            owner.handle(self)

        do_PUT = do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    owner.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=owner.server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield owner
    owner.server.shutdown()
    owner.server.server_close()
    thread.join()


def _flag_ctx(flags: FlagServer, **extra: Any) -> ActionContext:
    return _ctx(backend="http-flag", url=flags.url, token=SecretRef(env=TOKEN_ENV), **extra)


def test_http_flag_round_trip_writes_once(flags: FlagServer) -> None:
    plan, first, second, verified, _, _ = _round_trip(_flag_ctx(flags))
    assert "flag http://127.0.0.1:" in plan.summary and "?env" not in plan.summary
    assert first.facts["changed"] and not second.facts["changed"] and verified.ok
    assert flags.writes == [{"payments.endpoint": SECONDARY}, {"payments.endpoint": PRIMARY}]
    assert flags.flags["payments.endpoint"] == PRIMARY


def test_http_flag_can_post(flags: FlagServer) -> None:
    ctx = _flag_ctx(flags, method="POST")
    _run("execute", ctx, _run("plan", ctx))
    assert flags.flags["payments.endpoint"] == SECONDARY


def test_http_flag_wrong_token_is_permanent_and_the_token_is_masked(
        flags: FlagServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-1234")
    with pytest.raises(PermanentError) as err:
        _run("plan", _flag_ctx(flags))
    assert err.value.code == "fallback_auth"
    assert str(err.value).startswith("flag http://127.0.0.1:")
    assert 'GET answered HTTP 401: {"error": "unauthorized", "got": "Bearer ***"}' in str(err.value)
    assert "wrong-token" not in str(err.value)


def test_http_flag_503_is_temporary(flags: FlagServer) -> None:
    flags.status = 503
    with pytest.raises(TemporaryError) as err:
        _run("plan", _flag_ctx(flags))
    assert err.value.code == "fallback_unavailable" and TOKEN not in str(err.value)


def test_configmap_round_trip_and_dry_run(kube_client: kubernetes.client.ApiClient,
                                          kube_namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube_client)
    core.create_namespaced_config_map(kube_namespace, kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name="checkout-endpoints"),
        data={"payments.endpoint": PRIMARY, "other": "keep"}))
    ctx = _ctx(namespace=kube_namespace, backend="configmap", configmap="checkout-endpoints")
    ctx.kube = lambda: kube_client
    plan = _run("plan", ctx)
    assert _run("dry_run", ctx, plan).ok

    def data() -> dict[str, str]:
        return dict(core.read_namespaced_config_map("checkout-endpoints", kube_namespace).data or {})

    assert data()["payments.endpoint"] == PRIMARY
    assert _run("execute", ctx, plan).facts["changed"] and _run("verify", ctx, plan).ok
    assert data() == {"payments.endpoint": SECONDARY, "other": "keep"}
    assert not _run("execute", ctx, plan).facts["changed"]
    _run("revert", ctx, plan)
    assert data() == {"payments.endpoint": PRIMARY, "other": "keep"}


def test_missing_configmap_is_permanent(kube_client: kubernetes.client.ApiClient,
                                        kube_namespace: str) -> None:
    ctx = _ctx(namespace=kube_namespace, backend="configmap", configmap="nope")
    ctx.kube = lambda: kube_client
    with pytest.raises(PermanentError) as err:
        _run("plan", ctx)
    assert str(err.value) == (f"configmap {kube_namespace}/nope key payments.endpoint: "
                              "read_namespaced_config_map answered HTTP 404 Not Found")
