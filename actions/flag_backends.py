"""Where a feature flag lives, behind one small interface: read it, switch it.

- `ConfigMapFlag`: a key of a ConfigMap in the target's namespace holding "true"/"false" (the
  in-cluster default). Written with the resourceVersion just read (409 retried), `dryRun=All` for
  a dry run, and an Event on the ConfigMap for every change.
- `UnleashFlag`: the Unleash admin API. `GET /api/admin/projects/{project}/features/{name}` reads
  the per-environment state; `POST .../environments/{env}/on|off` switches it. The token goes in
  the `Authorization` header as is (Unleash API tokens are not bearer tokens).
- `WebhookFlag`: any JSON service: `GET url` answers `{"enabled": bool}`, `PUT url` takes
  `{"enabled": bool}`, with an optional bearer token.

HTTP services have no dry-run verb: a dry run reads the flag, which proves the address, the
token and the flag's existence. Used by `feature_flag.py`; tokens never reach a message.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

from actions._kube import ObjectRef, Op, api, call, read_json, retry_conflicts, write_event
from agent.model import FlagSpec, PermanentError, TemporaryError
from agent.model.context import ActionContext
from agent.model.redact import redact, truncate
from agent.model.urls import endpoint

HTTP_TIMEOUT_S = 10.0
TRUE, FALSE = frozenset({"true", "on", "1", "yes"}), frozenset({"false", "off", "0", "no"})


class FlagBackend(Protocol):
    """A flag's store. `where` names it (no secrets) in plans, outcomes and errors."""

    where: str

    async def get(self) -> bool: ...

    async def set(self, enabled: bool, dry_run: bool = False) -> None: ...


def _boolean(value: Any, where: str) -> bool:
    text = str(value).strip().lower()
    if isinstance(value, bool) or text in TRUE | FALSE:
        return value if isinstance(value, bool) else text in TRUE
    raise PermanentError(f"{where} holds {truncate(str(value), 40)!r}, not a boolean", code="flag_garbage")


class ConfigMapFlag:
    """A ConfigMap key in the target's namespace: "true" or "false"."""

    def __init__(self, spec: FlagSpec, ctx: ActionContext) -> None:
        if not spec.configmap:
            raise PermanentError(f"flag {spec.name}: configmap backend needs `configmap`",
                                 code="flag_unconfigured")
        self.name, self.key, self.ctx, self.flag = spec.configmap, spec.key or spec.name, ctx, spec.name
        self.namespace = ctx.target.namespace
        self.where = f"configmap {self.namespace}/{self.name} key {self.key}"

    async def _read(self) -> dict[str, Any]:
        core = api(self.ctx, "CoreV1Api")
        return await read_json(self.ctx, Op("get", "configmaps", self.namespace, self.name),
                               core.read_namespaced_config_map, self.name, self.namespace)

    async def get(self) -> bool:
        data = (await self._read()).get("data") or {}
        if self.key not in data:
            raise PermanentError(f"{self.where}: no such key", code="flag_missing")
        return _boolean(data[self.key], self.where)

    async def set(self, enabled: bool, dry_run: bool = False) -> None:
        async def attempt() -> None:
            cm = await self._read()
            body = {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]},
                    "data": {self.key: "true" if enabled else "false"}}
            core = api(self.ctx, "CoreV1Api")
            await call(self.ctx, Op("patch", "configmaps", self.namespace, self.name),
                       core.patch_namespaced_config_map, self.name, self.namespace, body,
                       _preload_content=False, **({"dry_run": "All"} if dry_run else {}))

        await retry_conflicts(attempt)
        if not dry_run:
            ref = ObjectRef("v1", "ConfigMap", self.namespace, self.name)
            await write_event(self.ctx, ref, "HemostatFeatureFlag",
                              f"Hemostat turned flag {self.flag} {'on' if enabled else 'off'} ({self.key})")


def _raise_for(response: httpx.Response, where: str, method: str, secret: str) -> None:
    status = response.status_code
    if status < 400:
        return
    body = truncate(redact(response.text, (secret,)), 200)
    message = f"{where}: {method} answered HTTP {status}: {body}"
    if status in {408, 429} or status >= 500:
        after = response.headers.get("Retry-After", "")
        delay = float(after) if after.isdigit() else 10.0
        raise TemporaryError(message, code="flag_unavailable", delay=delay)
    if status in {401, 403}:
        raise PermanentError(f"{where}: {method} refused (HTTP {status}): check the token and its "
                             "permissions", code="flag_forbidden")
    raise PermanentError(message, code="flag_missing" if status == 404 else "flag_refused")


class _Http:
    """One JSON HTTP endpoint family, guarded by the breaker `http:<base>`."""

    def __init__(self, ctx: ActionContext, base: str, where: str, token: str, auth: str) -> None:
        self.ctx, self.base, self.where, self.token = ctx, base.rstrip("/"), where, token
        self.headers = {"Authorization": auth} if token else {}

    async def send(self, method: str, path: str = "", body: Any = None) -> Any:
        url = self.base + path
        try:
            with self.ctx.breakers.guard(f"http:{endpoint(self.base)}"):
                async with httpx.AsyncClient(trust_env=False, timeout=HTTP_TIMEOUT_S,
                                             verify=self.ctx.tls()) as client:
                    response = await client.request(method, url, json=body, headers=self.headers)
                    _raise_for(response, self.where, method, self.token)
        except httpx.HTTPError as e:
            raise TemporaryError(f"{self.where}: {method} failed: {type(e).__name__}",
                                 code="flag_unreachable") from e
        try:
            return response.json() if response.content else None
        except ValueError as e:
            raise PermanentError(f"{self.where}: answer is not JSON", code="flag_garbage") from e


def _token(spec: FlagSpec) -> str:
    return spec.token.resolve() if spec.token is not None else ""


def _url(spec: FlagSpec) -> str:
    if spec.url is None:
        raise PermanentError(f"flag {spec.name}: {spec.backend} backend needs `url`",
                             code="flag_unconfigured")
    return spec.url.resolve()


class UnleashFlag:
    """A feature toggle in one Unleash project and environment, through the admin API."""

    def __init__(self, spec: FlagSpec, ctx: ActionContext) -> None:
        self.feature, self.env = spec.key or spec.name, spec.environment
        token = _token(spec)
        path = f"/api/admin/projects/{quote(spec.project)}/features/{quote(self.feature)}"
        base = _url(spec).rstrip("/") + path
        self.where = f"unleash {spec.project}/{self.feature} in {self.env}"
        self.http = _Http(ctx, base, self.where, token, token)

    async def get(self) -> bool:
        feature = await self.http.send("GET")
        envs = feature.get("environments") if isinstance(feature, dict) else None
        match = next((e for e in envs or [] if isinstance(e, dict) and e.get("name") == self.env), None)
        if match is None:
            raise PermanentError(f"{self.where}: no environment {self.env!r}", code="flag_missing")
        return _boolean(match.get("enabled"), self.where)

    async def set(self, enabled: bool, dry_run: bool = False) -> None:
        if dry_run:
            await self.get()
            return
        await self.http.send("POST", f"/environments/{quote(self.env)}/{'on' if enabled else 'off'}")


class WebhookFlag:
    """A generic JSON flag endpoint: `GET` -> `{"enabled": bool}`, `PUT {"enabled": bool}`."""

    def __init__(self, spec: FlagSpec, ctx: ActionContext) -> None:
        url, token = _url(spec), _token(spec)
        self.where = f"flag {spec.name} at {endpoint(url)}"
        self.http = _Http(ctx, url, self.where, token, f"Bearer {token}")

    async def get(self) -> bool:
        body = await self.http.send("GET")
        if not isinstance(body, dict) or "enabled" not in body:
            raise PermanentError(f"{self.where}: answer has no `enabled`", code="flag_garbage")
        return _boolean(body["enabled"], self.where)

    async def set(self, enabled: bool, dry_run: bool = False) -> None:
        if dry_run:
            await self.get()
            return
        await self.http.send("PUT", body={"enabled": enabled})


def backend_for(spec: FlagSpec, ctx: ActionContext) -> FlagBackend:
    """The backend a `FlagSpec` names."""
    if spec.backend == "configmap":
        return ConfigMapFlag(spec, ctx)
    if spec.backend == "unleash":
        return UnleashFlag(spec, ctx)
    return WebhookFlag(spec, ctx)
