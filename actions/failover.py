"""Action `failover`: switch a dependency to its secondary endpoint, where its `FallbackSpec` says.

Three backends hold the active value under `key`:
- `file`: a JSON, YAML or `.env` file. YAML and `.env` are edited in place (only the value's
  characters change, comments survive); JSON is re-serialised. Written atomically (temp + rename).
- `http-flag`: `GET url` returns a JSON object holding `key`; the switch sends `{key: value}` as
  JSON with the configured method (PUT by default) and a bearer token from a `SecretRef`.
- `configmap`: the key of a ConfigMap in the target's namespace, patched with the official client
  in a worker thread (`dryRun=All` for a dry run).

Every step reads the live value first: already on the wanted value changes nothing (idempotent);
a value that is neither primary nor secondary is someone else's change, and is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from actions import _gitops
from actions.base import Outcome
from agent.model import Change, FallbackSpec, PermanentError, Plan, Proposal, TargetSpec, TemporaryError
from agent.model.context import ActionContext
from agent.model.rbac import KubeRule, gitops_rules
from agent.model.redact import redact, truncate
from agent.model.urls import endpoint

HTTP_TIMEOUT_S = 10.0


class Backend(Protocol):
    """Where the active value lives. `where` names it in plans and errors, without secrets."""

    where: str

    async def read(self) -> str | None: ...

    async def write(self, value: str, dry_run: bool) -> None: ...


def _text(value: Any) -> str | None:
    """The value as the spec's primary/secondary strings spell it (YAML `true` is "true")."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, bool | dict | list) else str(value)


class FileBackend:
    """A config file on a shared volume; the format follows the suffix (.json, .yaml/.yml, else .env)."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key
        self.kind = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix, "env")
        self.where = f"file {path} key {key}"

    async def read(self) -> str | None:
        return _text(_lookup(self.kind, await asyncio.to_thread(self._load), self.key, self.where))

    async def write(self, value: str, dry_run: bool) -> None:
        text = await asyncio.to_thread(self._load)
        updated = _replace(self.kind, text, self.key, value, self.where)
        if _text(_lookup(self.kind, updated, self.key, self.where)) != value:
            raise PermanentError(f"{self.where}: rewriting the value did not read back", code="fallback_io")
        if not dry_run:
            await asyncio.to_thread(self._store, updated)

    def _load(self) -> str:
        try:
            return self.path.read_text()
        except OSError as e:
            raise PermanentError(f"{self.where}: cannot read: {e.strerror}", code="fallback_io") from e

    def _store(self, text: str) -> None:
        """Temp file in the same directory, fsync, rename: readers see the old file or the new one."""
        mode = self.path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise PermanentError(f"{self.where}: cannot write: {e.strerror}", code="fallback_io") from e


def _env_line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<head>\s*(?:export\s+)?{re.escape(key)}\s*=\s*)(?P<val>.*?)\s*$", re.M)


def _quote(match: re.Match[str]) -> str:
    """Keep a .env value's quotes: `KEY="a b"` stays quoted after the switch."""
    return match["val"][:1] if match["val"][:1] in {'"', "'"} else ""


def _lookup(kind: str, text: str, key: str, where: str) -> Any:
    if kind == "env":
        match = _env_line(key).search(text)
        return match["val"].strip("\"'") if match else None
    try:
        data = json.loads(text) if kind == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise PermanentError(f"{where}: not valid {kind}: {truncate(str(e), 120)}",
                             code="fallback_garbage") from e
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _replace(kind: str, text: str, key: str, value: str, where: str) -> str:
    if kind == "env":
        line = _env_line(key)
        if not line.search(text):
            raise PermanentError(f"{where}: no such key", code="fallback_key_missing")
        return line.sub(lambda m: f"{m['head']}{_quote(m)}{value}{_quote(m)}", text, count=1)
    if kind == "json":
        return json.dumps(_set(json.loads(text), key, value, where), indent=2) + "\n"
    return _replace_yaml(text, key, value, where)


def _set(data: Any, key: str, value: str, where: str) -> Any:
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or last not in node:
        raise PermanentError(f"{where}: no such key", code="fallback_key_missing")
    node[last] = value
    return data


def _replace_yaml(text: str, key: str, value: str, where: str) -> str:
    """Swap only the scalar's characters, found through the composed node's marks."""
    node: Any = yaml.compose(text)
    for part in key.split("."):
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        node = next((v for k, v in pairs if getattr(k, "value", None) == part), None)
    if not isinstance(node, yaml.ScalarNode):
        raise PermanentError(f"{where}: no such scalar key", code="fallback_key_missing")
    plain = node.style is None and yaml.safe_load(value) == value and ": " not in value
    rendered = value if plain else json.dumps(value)
    return text[: node.start_mark.index] + rendered + text[node.end_mark.index:]


class HttpFlagBackend:
    """A flag service: `GET url` -> JSON object with `key`; `PUT/POST url {key: value}` to switch."""

    def __init__(self, spec: FallbackSpec, ctx: ActionContext) -> None:
        assert spec.url is not None
        self.url, self.key, self.method, self.ctx = spec.url.resolve(), spec.key, spec.method, ctx
        self.token = spec.token.resolve() if spec.token is not None else ""
        self.where = f"flag {_safe_url(self.url)} key {spec.key}"

    async def read(self) -> str | None:
        body = await self._send("GET", None)
        if not isinstance(body, dict):
            raise PermanentError(f"{self.where}: answer is not a JSON object", code="fallback_garbage")
        return _text(body.get(self.key))

    async def write(self, value: str, dry_run: bool) -> None:
        if not dry_run:  # no dry-run verb on a flag service: the read in `read` validated access
            await self._send(self.method, {self.key: value})

    async def _send(self, method: str, body: dict[str, str] | None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with self.ctx.breakers.guard(f"http:{_safe_url(self.url)}"):
                async with httpx.AsyncClient(trust_env=False, timeout=HTTP_TIMEOUT_S,
                                             verify=self.ctx.tls()) as client:
                    response = await client.request(method, self.url, json=body, headers=headers)
                    _raise_for(response, self.where, method, self.token)
                    return response.json() if response.content else None
        except httpx.HTTPError as e:
            raise TemporaryError(f"{self.where}: {method} failed: {type(e).__name__}",
                                 code="fallback_unreachable") from e
        except ValueError as e:
            raise PermanentError(f"{self.where}: answer is not JSON", code="fallback_garbage") from e


def _safe_url(url: str) -> str:
    return endpoint(url)  # no userinfo, no query: it names breakers and goes into plans


def _raise_for(response: httpx.Response, where: str, method: str, token: str) -> None:
    status = response.status_code
    if status < 400:
        return
    body = truncate(redact(response.text, (token,)), 200)
    message = f"{where}: {method} answered HTTP {status}: {body}"
    if status in {408, 429} or status >= 500:
        raise TemporaryError(message, code="fallback_unavailable", delay=15)
    raise PermanentError(message, code="fallback_auth" if status in {401, 403} else "fallback_refused")


class ConfigMapBackend:
    """A key of a ConfigMap in the target's namespace, through the official client in a thread."""

    def __init__(self, spec: FallbackSpec, ctx: ActionContext) -> None:
        assert spec.configmap is not None
        self.name, self.key, self.ctx = spec.configmap, spec.key, ctx
        self.namespace = ctx.target.namespace
        self.where = f"configmap {self.namespace}/{self.name} key {spec.key}"

    async def read(self) -> str | None:
        cm = await self._call("read_namespaced_config_map", self.name, self.namespace)
        return _text((cm.data or {}).get(self.key))

    async def write(self, value: str, dry_run: bool) -> None:
        extra = {"dry_run": "All"} if dry_run else {}
        await self._call("patch_namespaced_config_map", self.name, self.namespace,
                         {"data": {self.key: value}}, **extra)

    async def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException

        api = CoreV1Api(self.ctx.kube())
        try:
            with self.ctx.breakers.guard("kube:configmaps"):
                return await asyncio.to_thread(getattr(api, verb), *args, **kwargs)
        except ApiException as e:
            raise _kube_error(e, self.where, verb) from e


def _kube_error(e: Any, where: str, verb: str) -> Exception:
    status = int(e.status or 0)
    message = f"{where}: {verb} answered HTTP {status} {e.reason}"
    if status == 0 or status in {409, 429} or status >= 500:
        return TemporaryError(message, code="kube_unavailable", delay=10)
    return PermanentError(message, code="kube_forbidden" if status in {401, 403} else "kube_refused")


def _backend(spec: FallbackSpec, ctx: ActionContext) -> Backend:
    if spec.backend == "file":
        if spec.path is None:
            raise PermanentError("file fallback needs `path`", code="fallback_unconfigured")
        return FileBackend(spec.path, spec.key)
    if spec.backend == "http-flag" and spec.url is not None:
        return HttpFlagBackend(spec, ctx)
    if spec.backend == "configmap" and spec.configmap is not None:
        return ConfigMapBackend(spec, ctx)
    field = "url" if spec.backend == "http-flag" else "configmap"
    raise PermanentError(f"{spec.backend} fallback needs `{field}`", code="fallback_unconfigured")


def _resolve(ctx: ActionContext, subject: str) -> tuple[FallbackSpec, Backend]:
    dep = ctx.target.dependency(subject)
    if dep is None or dep.fallback is None:
        raise PermanentError(f"{subject} has no fallback configured in target {ctx.target.name}",
                             code="fallback_unconfigured")
    return dep.fallback, _backend(dep.fallback, ctx)


async def _current(backend: Backend, spec: FallbackSpec) -> str:
    value = await backend.read()
    if value not in {spec.primary, spec.secondary}:
        raise PermanentError(
            f"{backend.where} is {value!r}, neither primary {spec.primary!r} nor secondary "
            f"{spec.secondary!r}: someone else changed it, not touching it", code="fallback_unexpected")
    assert value is not None
    return value


class FailoverAction:
    name = "failover"
    summary = "switch a dependency to its secondary endpoint (config file, flag service or ConfigMap)"
    # The ConfigMap backend's calls; files and flag services need no Kubernetes rights.
    kube_rules = (KubeRule("", "configmaps", ("get", "patch"), "configured", "the endpoint key"),
                  *gitops_rules(("get",), "does a GitOps controller put the key back"))
    mutates = True

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        dep = target.dependency(subject)
        if dep is None:
            return f"{subject} is not a dependency of {target.name}"
        return None if dep.fallback is not None else f"{subject} has no fallback configured"

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        spec, backend = _resolve(ctx, proposal.subject)
        now = await _current(backend, spec)
        done = " (already on secondary)" if now == spec.secondary else ""
        if isinstance(backend, ConfigMapBackend):
            done += await _gitops.configmap_warning(ctx, backend.name)
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"fail {proposal.subject} over: {backend.where}: "
                    f"{spec.primary} -> {spec.secondary}{done}",
            changes=(Change(backend.where, spec.key, now, spec.secondary),),
            touches=(backend.where,),
            state={"backend": spec.backend, "key": spec.key, "before": now,
                   "primary": spec.primary, "secondary": spec.secondary},
            blast_radius={"dependencies": 1},
        )

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return await self._switch(plan, ctx, to_secondary=True)

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return await self._switch(plan, ctx, to_secondary=False)

    async def _switch(self, plan: Plan, ctx: ActionContext, to_secondary: bool) -> Outcome:
        spec, backend = _resolve(ctx, plan.subject)
        wanted = spec.secondary if to_secondary else spec.primary
        if await _current(backend, spec) == wanted:
            return Outcome(True, f"{backend.where} already {wanted}: nothing changed", {"changed": False})
        await backend.write(wanted, dry_run=False)
        return Outcome(True, f"{backend.where} switched to {wanted}", {"changed": True, "value": wanted})

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        spec, backend = _resolve(ctx, plan.subject)
        value = await backend.read()
        ok = value == spec.secondary
        return Outcome(ok, f"{backend.where} is {value!r}" + ("" if ok else f", not {spec.secondary!r}"),
                       {"value": value})

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        spec, backend = _resolve(ctx, plan.subject)
        now = await _current(backend, spec)
        if now != spec.secondary:
            await backend.write(spec.secondary, dry_run=True)
        return Outcome(True, f"would switch {backend.where}: {now} -> {spec.secondary}", {"value": now})
