"""feature-flag-off: one contract suite run against every flag backend.

The ConfigMap backend goes through the fake apiserver; Unleash-shaped and webhook flag services
are real loopback HTTP servers written here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes.client
import pytest

from actions.feature_flag import FeatureFlagOffAction
from agent.model import FlagSpec, PermanentError, Plan, Proposal, SecretRef, TargetSpec, TemporaryError
from agent.model.context import ActionContext
from tests.kubeapi.server import FakeApiServer

NS, FLAG, TOKEN_ENV, TOKEN = "shop", "new-checkout", "HEMOSTAT_TEST_FLAG_TOKEN", "flag-token-s3cr3t"
UNLEASH_PATH = f"/api/admin/projects/web/features/{FLAG}"
WEBHOOK_PATH = f"/flags/{FLAG}"


@dataclass
class FlagService:
    """An Unleash-shaped admin API and a JSON flag webhook over one flag, on loopback."""

    enabled: bool = True
    status: int = 200  # force an error answer (e.g. 503)
    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        self.requests.append((method, handler.path))
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"null")
        auth = handler.headers.get("Authorization")
        if self.status != 200:
            return self.status, {"message": f"unavailable (token {auth})"}
        if handler.path.startswith(UNLEASH_PATH):
            return (401, {"message": "bad token"}) if auth != TOKEN else self.unleash(method, handler.path)
        if handler.path == WEBHOOK_PATH:
            return (401, {"message": "bad token"}) if auth != f"Bearer {TOKEN}" else self.webhook(method, body)
        return 404, {"message": "no such flag"}

    def unleash(self, method: str, path: str) -> tuple[int, Any]:
        if method == "GET" and path == UNLEASH_PATH:
            return 200, {"name": FLAG, "project": "web", "environments": [
                {"name": "staging", "enabled": True}, {"name": "production", "enabled": self.enabled}]}
        if method == "POST" and path.startswith(f"{UNLEASH_PATH}/environments/production/"):
            self.enabled = path.endswith("/on")
            return 200, None
        return 404, {"message": "no such route"}

    def webhook(self, method: str, body: Any) -> tuple[int, Any]:
        if method == "PUT":
            self.enabled = bool(body["enabled"])
        return 200, {"enabled": self.enabled, "owner": "checkout-team"}

    def start(self) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                status, payload = service.answer(self, method)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def do_PUT(self) -> None:
                self._reply("PUT")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Harness:
    """One backend under test: the context, and hooks to look at or break the flag's store."""

    ctx: ActionContext
    enabled: Callable[[], bool]
    set_enabled: Callable[[bool], None]
    refuse_credentials: Callable[[], None]
    make_unavailable: Callable[[], None]


def _ctx(spec: FlagSpec, client: Any = None) -> ActionContext:
    target = TargetSpec(name="shop-app", namespace=NS, deployment="app", flags=[spec])
    if client is None:
        return ActionContext(target=target)
    return ActionContext(target=target, kube=lambda: client)


def _configmap(request: pytest.FixtureRequest) -> Harness:
    api: FakeApiServer = request.getfixturevalue("kube_api")
    client: kubernetes.client.ApiClient = request.getfixturevalue("kube_client")
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": NS},
              "data": {FLAG: "true", "other": "true"}})
    core = kubernetes.client.CoreV1Api(client)
    path = f"/api/v1/namespaces/{NS}/configmaps/flags"
    return Harness(
        ctx=_ctx(FlagSpec(name=FLAG, backend="configmap", configmap="flags"), client),
        enabled=lambda: core.read_namespaced_config_map("flags", NS).data[FLAG] == "true",
        set_enabled=lambda on: core.patch_namespaced_config_map("flags", NS, {"data": {FLAG: str(on).lower()}}),
        refuse_credentials=lambda: api.fail_next("GET", path, 403),
        make_unavailable=lambda: api.fail_next("PATCH", path, 503))


def _http(backend: str, service: FlagService, url: str, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    spec = FlagSpec(name=FLAG, backend=backend, url=url + ("" if backend == "unleash" else WEBHOOK_PATH),
                    project="web", environment="production", token=SecretRef(env=TOKEN_ENV))

    def refuse() -> None:
        monkeypatch.setenv(TOKEN_ENV, "not-the-token")

    return Harness(ctx=_ctx(spec), enabled=lambda: service.enabled,
                   set_enabled=lambda on: setattr(service, "enabled", on), refuse_credentials=refuse,
                   make_unavailable=lambda: setattr(service, "status", 503))


@pytest.fixture(params=["configmap", "unleash", "webhook"])
def flag(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    if request.param == "configmap":
        yield _configmap(request)
        return
    service = FlagService()
    url = service.start()
    try:
        yield _http(request.param, service, url, monkeypatch)
    finally:
        service.stop()


def proposal() -> Proposal:
    return Proposal(id="p3", target="shop-app", action="feature-flag-off", subject=FLAG, params={}, path=(),
                    reason="error spike, no single cause", created_at=datetime.now(UTC))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


ACTION = FeatureFlagOffAction()


def test_flag_turned_off_verified_and_turned_back_on(flag: Harness) -> None:
    plan: Plan = run(ACTION.plan(proposal(), flag.ctx))
    assert [(c.field, c.before, c.after) for c in plan.changes] == [("enabled", True, False)]
    assert run(ACTION.execute(plan, flag.ctx)).facts == {"changed": True, "enabled": False}
    assert not flag.enabled()
    assert run(ACTION.verify(plan, flag.ctx)).ok
    assert run(ACTION.revert(plan, flag.ctx)).facts == {"changed": True, "enabled": True}
    assert flag.enabled()
    assert not run(ACTION.verify(plan, flag.ctx)).ok


def test_executing_twice_changes_nothing_the_second_time(flag: Harness) -> None:
    plan = run(ACTION.plan(proposal(), flag.ctx))
    run(ACTION.execute(plan, flag.ctx))
    assert run(ACTION.execute(plan, flag.ctx)).facts == {"changed": False, "enabled": False}
    assert not flag.enabled()


def test_dry_run_changes_nothing(flag: Harness) -> None:
    plan = run(ACTION.plan(proposal(), flag.ctx))
    outcome = run(ACTION.dry_run(plan, flag.ctx))
    assert outcome.ok and outcome.facts == {"enabled": True}
    assert flag.enabled()


def test_revert_leaves_off_a_flag_that_was_off_before_the_plan(flag: Harness) -> None:
    flag.set_enabled(False)
    plan = run(ACTION.plan(proposal(), flag.ctx))
    assert "already off" in plan.summary
    assert run(ACTION.execute(plan, flag.ctx)).facts["changed"] is False
    assert run(ACTION.revert(plan, flag.ctx)).facts["changed"] is False
    assert not flag.enabled()


def test_refused_credentials_are_permanent_and_say_so(flag: Harness) -> None:
    flag.refuse_credentials()
    with pytest.raises(PermanentError) as err:
        run(ACTION.plan(proposal(), flag.ctx))
    assert "forbidden" in str(err.value) or "check the token" in str(err.value)
    assert TOKEN not in str(err.value)


def test_an_unavailable_store_is_temporary(flag: Harness) -> None:
    plan = run(ACTION.plan(proposal(), flag.ctx))
    flag.make_unavailable()
    with pytest.raises(TemporaryError) as err:
        run(ACTION.execute(plan, flag.ctx))
    assert "503" in str(err.value) and TOKEN not in str(err.value)
    assert flag.enabled()


def test_unknown_flag_is_unavailable_and_refused() -> None:
    target = TargetSpec(name="shop-app", namespace=NS)
    assert ACTION.unavailable_reason(target, "nope") == "flag nope is not configured in target shop-app"
    with pytest.raises(PermanentError, match="not configured"):
        run(ACTION.plan(proposal(), ActionContext(target=target)))


def test_configmap_event_written_and_garbage_value_refused(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": NS},
                   "data": {FLAG: "true", "broken": "maybe"}})
    ctx = _ctx(FlagSpec(name=FLAG, backend="configmap", configmap="flags"), kube_client)
    run(ACTION.execute(run(ACTION.plan(proposal(), ctx)), ctx))
    [event] = kubernetes.client.CoreV1Api(kube_client).list_namespaced_event(NS).items
    assert (event.reason, event.involved_object.kind, event.involved_object.name) == (
        "HemostatFeatureFlag", "ConfigMap", "flags")
    broken = _ctx(FlagSpec(name=FLAG, backend="configmap", configmap="flags", key="broken"), kube_client)
    with pytest.raises(PermanentError, match="holds 'maybe', not a boolean"):
        run(ACTION.plan(proposal(), broken))


def test_unleash_switches_only_the_configured_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    service = FlagService()
    url = service.start()
    try:
        harness = _http("unleash", service, url, monkeypatch)
        run(ACTION.execute(run(ACTION.plan(proposal(), harness.ctx)), harness.ctx))
    finally:
        service.stop()
    assert ("POST", f"{UNLEASH_PATH}/environments/production/off") in service.requests


def test_a_flag_configmap_that_flux_puts_back_is_said_so_in_the_plan(
        kube_api: FakeApiServer, kube_client: kubernetes.client.ApiClient) -> None:
    from tests.kubeapi.gitops import register_gitops_crds

    register_gitops_crds(kube_api)
    for ns in (NS, "flux-system"):
        kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube_api.seed({"apiVersion": "v1", "kind": "ConfigMap", "data": {FLAG: "true"},
                   "metadata": {"name": "flags", "namespace": NS, "labels": {
                       "kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}})
    kube_api.seed({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "flux-system"}, "spec": {"interval": "5m"}})
    ctx = _ctx(FlagSpec(name=FLAG, backend="configmap", configmap="flags"), kube_client)
    plan = run(FeatureFlagOffAction().plan(proposal(), ctx))
    assert plan.summary.endswith(
        "; warning: configmap shop/flags is managed by Flux Kustomization flux-system/apps, auto-sync with "
        "self-heal, which will put the key back: change it in git, or move the flag to a flag service")
