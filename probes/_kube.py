"""Kubernetes reads shared by the k8s probes: guarded calls, error mapping, the deployment's pods.

Calls run the blocking official client in a worker thread under the breaker `kube:<host>`,
bounded by the probe context's timeout, and return raw JSON (camelCase, as kubectl shows it,
which is also what an observation records). Only server trouble (timeouts, 429, 5xx) counts
against the breaker. A 403 names the verb, resource and namespace to grant. Used by
`k8s_logs.py` and `k8s_workload.py`; `kubernetes` is imported inside functions only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from agent.model import HemostatError, PermanentError, TargetSpec, TemporaryError
from agent.model.context import ProbeContext
from agent.model.kube import RawApi, RawRead, body_message, call_blocking, server_trouble
from agent.model.kube_http import KubeEndpoint, KubeStatusError
from agent.model.rbac import KubeRule
from agent.model.redact import redact, truncate

JSON = dict[str, Any]
MAX_JSON_BYTES = 32 << 20  # one object or list answer; a larger one is refused, not half-read
MAX_PODS = 50  # a probe reads at most this many pods: evidence, not an inventory
# What `read_deployment` and `list_pods` call: every Kubernetes probe starts with them.
DEPLOYMENT_READS = (
    KubeRule("apps", "deployments", ("get",), "target", "the target's Deployment"),
    KubeRule("apps", "statefulsets", ("get",), "target", "or its StatefulSet"),
    KubeRule("apps", "daemonsets", ("get",), "target", "or its DaemonSet"),
    KubeRule("argoproj.io", "rollouts", ("get",), "target", "or its Argo Rollouts Rollout"),
    KubeRule("", "pods", ("list",), why="the pods its selector picks"),
)


async def connect(ctx: ProbeContext) -> None:
    """With a plain endpoint (agent/model/kube_http.py) nothing to do. Otherwise import the
    official client and build the ApiClient off the event loop: the first use costs about half
    a second, which on the loop would stall every other probe of the pass."""
    if ctx.endpoint() is None:
        await asyncio.to_thread(_warm, ctx)


def _warm(ctx: ProbeContext) -> None:
    import kubernetes.client  # noqa: F401

    ctx.kube()


def api(ctx: ProbeContext, kind: str) -> Any:
    """`api(ctx, "CoreV1Api")` over the context's ApiClient; the probes' reads go out as plain
    GETs (`RawApi`), so a pass never pays for importing the typed API modules."""
    return RawApi(ctx.kube, kind)


def to_error(e: Any, verb: str, resource: str, namespace: str, name: str = "") -> HemostatError:
    status = int(e.status or 0)
    if status == 403:
        return PermanentError(f"forbidden: cannot {verb} {resource} in namespace {namespace} "
                              "— grant it in the Role", code="kube_forbidden")
    if status == 404:
        what = f"{resource} {namespace}/{name}" if name else f"{resource} in namespace {namespace}"
        return PermanentError(f"not found: {what}", code="kube_not_found")
    if server_trouble(status):
        return TemporaryError(f"apiserver busy on {verb} {resource} in {namespace}: HTTP {status}",
                              code="kube_unavailable")
    return PermanentError(f"{verb} {resource} in {namespace}: HTTP {status}: {body_message(e)}",
                          code="kube_bad_request" if status == 400 else "kube_refused")


async def call(ctx: ProbeContext, what: tuple[str, str, str, str], fn: Callable[..., Any],
               *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` in a thread; `what` = (verb, resource, namespace, name) for errors."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    client = ctx.kube()
    host = str(client.configuration.host).split("://", 1)[-1]
    kwargs.setdefault("_request_timeout", ctx.timeout_s)
    try:
        with ctx.breakers.guard(f"kube:{host}"):
            result, refused = await asyncio.to_thread(call_blocking, fn, args, kwargs)
    except ApiException as e:
        raise to_error(e, *what) from e
    except urllib3.exceptions.HTTPError as e:
        cause = getattr(e, "reason", None) or e  # MaxRetryError wraps what the last attempt hit
        if isinstance(cause, urllib3.exceptions.TimeoutError):
            raise TemporaryError(f"apiserver {host}: {what[0]} {what[1]} timed out after {ctx.timeout_s:g}s",
                                 code="kube_timeout") from e
        raise TemporaryError(f"apiserver {host} unreachable: {type(cause).__name__}",
                             code="kube_unreachable") from e
    if refused is not None:
        raise to_error(refused, *what) from refused
    return result


async def read_json(ctx: ProbeContext, what: tuple[str, str, str, str], fn: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> JSON:
    if isinstance(fn, RawRead) and (endpoint := ctx.endpoint()) is not None:
        path, query = fn.route(*args, **kwargs)
        body, cut = await plain_get(ctx, endpoint, what, path, query, MAX_JSON_BYTES)
        if cut:
            raise PermanentError(f"{what[0]} {what[1]} in {what[2]}: the answer went on past "
                                 f"{MAX_JSON_BYTES >> 20} MiB", code="kube_too_large")
    else:
        response = await call(ctx, what, fn, *args, _preload_content=False, **kwargs)
        body = response.data or b"{}"
    data = json.loads(body or b"{}")
    return data if isinstance(data, dict) else {}


async def read_log(ctx: ProbeContext, what: tuple[str, str, str, str], cap: int, pod: str,
                   namespace: str, **kwargs: Any) -> tuple[bytes, bool]:
    """A container's log (`read_namespaced_pod_log`'s keyword arguments), at most `cap` bytes;
    (body, whether it went on past them)."""
    read = api(ctx, "CoreV1Api").read_namespaced_pod_log
    endpoint = ctx.endpoint()
    if endpoint is None:
        result: tuple[bytes, bool] = await call(ctx, what, functools.partial(read_capped, read, cap), pod,
                                                namespace, _preload_content=False, **kwargs)
        return result
    path, query = read.route(pod, namespace, **kwargs)
    body, cut = await plain_get(ctx, endpoint, what, path, query, cap)
    # with limitBytes the apiserver stops at exactly `cap`: a full cap means the log went on
    return body, cut or len(body) >= cap


_SESSION: ContextVar[Any] = ContextVar("kube_session", default=None)


@contextlib.asynccontextmanager
async def session(ctx: ProbeContext) -> AsyncIterator[None]:
    """One HTTP client for a probe pass's plain reads (its tasks inherit it), so a pass reading
    fifty logs keeps a few connections alive instead of making a TLS handshake per read."""
    endpoint = ctx.endpoint()
    if endpoint is None or _SESSION.get() is not None:
        yield
        return
    async with _client(endpoint) as client:
        token = _SESSION.set(client)
        try:
            yield
        finally:
            _SESSION.reset(token)


def _client(endpoint: KubeEndpoint) -> Any:
    import httpx

    return httpx.AsyncClient(verify=endpoint.verify(), trust_env=False)


async def plain_get(ctx: ProbeContext, endpoint: KubeEndpoint, what: tuple[str, str, str, str], path: str,
                    query: list[tuple[str, str]], cap: int) -> tuple[bytes, bool]:
    """GET `path` from the API server over httpx, under the same breaker, timeout and error
    mapping as the official client's calls; (body up to `cap` bytes, whether it was cut)."""
    import httpx

    from agent.model.bounded_http import fetch

    try:
        shared = _SESSION.get()
        with ctx.breakers.guard(f"kube:{endpoint.host}"):
            async with contextlib.nullcontext(shared) if shared else _client(endpoint) as client:
                answer = await fetch(client, "GET", endpoint.server + path, timeout_s=ctx.timeout_s,
                                     max_bytes=cap, params=query,
                                     headers={"Accept": "application/json", **endpoint.headers()},
                                     extensions=endpoint.request_extensions())
            if server_trouble(answer.status):
                raise KubeStatusError(answer.status, answer.body)
    except KubeStatusError as e:
        raise to_error(e, *what) from e
    except httpx.TimeoutException as e:
        raise TemporaryError(f"apiserver {endpoint.host}: {what[0]} {what[1]} timed out after "
                             f"{ctx.timeout_s:g}s", code="kube_timeout") from e
    except (httpx.HTTPError, ssl.SSLError, OSError) as e:
        raise TemporaryError(f"apiserver {endpoint.host} unreachable: {type(e).__name__}: "
                             f"{truncate(redact(str(e)), 200)}", code="kube_unreachable") from e
    if not 200 <= answer.status <= 299:
        raise to_error(KubeStatusError(answer.status, answer.body), *what)
    return answer.body, answer.truncated


@dataclass
class Budget:
    """Bytes a probe pass may still read. Taken and given back on the event loop only."""

    left: int

    def take(self, want: int) -> int:
        granted = min(want, self.left)
        self.left -= granted
        return granted

    def give_back(self, unused: int) -> None:
        self.left += unused


def read_capped(read_log: Callable[..., Any], cap: int, *args: Any, **kwargs: Any) -> tuple[bytes, bool]:
    """In a worker thread: the log request, its body read up to `cap` bytes, the connection
    closed if more was coming. (body, whether it was cut)."""
    response = read_log(*args, **kwargs)
    try:
        body = bytes(response.read(cap + 1) or b"")
    finally:
        response.close()  # never reuse a connection with an unread rest
        response.release_conn()
    return body[:cap], len(body) >= cap



def deployment_of(target: TargetSpec) -> tuple[str, str]:
    if not target.deployment:
        raise PermanentError(f"target {target.name} names no deployment", code="unconfigured")
    return target.namespace, target.deployment


def label_selector(selector: JSON) -> str:
    """A LabelSelector (matchLabels + matchExpressions) as the `labelSelector` query string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


_SNAKE_KINDS = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}


async def read_deployment(ctx: ProbeContext, target: TargetSpec) -> JSON:
    """The target's workload (`target.kind`), its status in a Deployment's terms."""
    ns, name = deployment_of(target)
    await connect(ctx)  # every Kubernetes probe starts here
    apps = api(ctx, "AppsV1Api")
    if target.kind == "Rollout":
        custom = api(ctx, "CustomObjectsApi")
        obj = await read_json(ctx, ("get", "rollouts", ns, name), custom.get_namespaced_custom_object,
                              "argoproj.io", "v1alpha1", ns, "rollouts", name)
    else:
        # the method by name, looked up only for the kind at hand: each lookup of a read that is
        # not a plain GET imports the typed API (a third of a second, on the event loop)
        read = getattr(apps, f"read_namespaced_{_SNAKE_KINDS[target.kind]}")
        obj = await read_json(ctx, ("get", f"{target.kind.lower()}s", ns, name), read, name, ns)
    return as_deployment(obj, target.kind)


def as_deployment(obj: JSON, kind: str) -> JSON:
    """A DaemonSet's `*NumberScheduled` counts as replicas; a Rollout's string generation as a
    number: the workload as the Deployment-shaped analysis reads it (`kind` kept)."""
    out = {**obj, "kind": kind, "status": dict(obj.get("status") or {})}
    status = out["status"]
    if kind == "DaemonSet":
        out["spec"] = {**obj.get("spec", {}), "replicas": int(status.get("desiredNumberScheduled", 0))}
        status.update(availableReplicas=status.get("numberAvailable", 0),
                      readyReplicas=status.get("numberReady", 0),
                      updatedReplicas=status.get("updatedNumberScheduled", 0),
                      replicas=status.get("currentNumberScheduled", 0))
    if not str(status.get("observedGeneration", "0")).isdigit():
        status["observedGeneration"] = obj["metadata"].get("generation", 0)
    return out


async def list_pods(ctx: ProbeContext, deploy: JSON) -> list[JSON]:
    """The pods the deployment's selector picks (old and new ReplicaSets alike), newest first."""
    ns = deploy["metadata"]["namespace"]
    core = api(ctx, "CoreV1Api")
    listing = await read_json(ctx, ("list", "pods", ns, ""), core.list_namespaced_pod, ns,
                              label_selector=label_selector(deploy["spec"].get("selector") or {}))
    pods: list[JSON] = listing.get("items", [])
    pods.sort(key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
    return pods[:MAX_PODS]


async def service_slices(ctx: ProbeContext, namespace: str, service: str) -> list[JSON]:
    """The EndpointSlices of a Service: where each of its pods answers."""
    await connect(ctx)
    discovery = api(ctx, "DiscoveryV1Api")
    listing = await read_json(ctx, ("list", "endpointslices", namespace, ""),
                              discovery.list_namespaced_endpoint_slice, namespace,
                              label_selector=f"kubernetes.io/service-name={service}")
    slices: list[JSON] = listing.get("items", [])
    return slices


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as a plain number: "250m" -> 0.25 (cores), "612344Ki" -> bytes.

    The official client's own parser, so every form the apiserver and metrics-server emit
    (decimal and binary suffixes, exponents like "1e3", "1.5Gi") reads the way Kubernetes means it.
    """
    from kubernetes.utils import parse_quantity as kube_parse

    try:
        return float(kube_parse(text.strip()))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError) as e:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from e
