"""Kubernetes plumbing shared by the actions: guarded calls, error mapping, conflicts, events.

Every call runs the blocking official client in a worker thread under the breaker
`kube:<apiserver host>`, and every `ApiException` becomes one of the project's errors:
403 names the verb, the resource and the namespace to grant; 404 says what is missing; 409 is a
`Conflict` that `retry_conflicts` retries with a fresh read; 429 and 5xx are temporary with the
server's `Retry-After`. Only server trouble counts against the breaker: a 404 or a 403 says
nothing about the apiserver's health. Response bodies are redacted and truncated before they reach a
message. Called by `rollback`, `scale-up` and the ConfigMap flag backend; `kubernetes` is imported
only here, inside functions, so the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.model import HemostatError, PermanentError, TemporaryError
from agent.model.context import ActionContext
from agent.model.kube import body_message, call_blocking, kube_api, server_trouble
from agent.model.redact import truncate

T = TypeVar("T")
REQUEST_TIMEOUT_S = 15.0  # per API call; an apiserver slower than this is in trouble itself
CONFLICT_ATTEMPTS = 3  # fresh read + write rounds on 409 before giving up
DEFAULT_RETRY_AFTER_S = 5.0
COMPONENT = "hemostat"


@dataclass(frozen=True)
class Op:
    """What a call does, for messages: `patch deployments shop/app`."""

    verb: str
    resource: str
    namespace: str
    name: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.name else f"in namespace {self.namespace}"
        return f"{self.verb} {self.resource} {where}"


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


class Conflict(TemporaryError):
    """409: the object changed between our read and our write; read again and retry."""

    code = "kube_conflict"


def api(ctx: ActionContext, kind: str) -> Any:
    """`api(ctx, "AppsV1Api")`: a typed API of the official client over the context's ApiClient."""
    return kube_api(ctx.kube, kind)


def _host(ctx: ActionContext) -> str:
    return str(ctx.kube().configuration.host).split("://", 1)[-1]


async def call(ctx: ActionContext, op: Op, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a thread, guarded, bounded, with errors mapped for `op`."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
    host = _host(ctx)
    try:
        with ctx.breakers.guard(f"kube:{host}"):
            result, refused = await asyncio.to_thread(call_blocking, fn, args, kwargs)
    except ApiException as e:
        raise to_error(e, op) from e
    except urllib3.exceptions.HTTPError as e:
        cause = getattr(e, "reason", None) or e  # MaxRetryError wraps what the last attempt hit
        raise TemporaryError(f"apiserver {host} unreachable on {op}: {type(cause).__name__}",
                             code="kube_unreachable", delay=DEFAULT_RETRY_AFTER_S) from e
    if refused is not None:
        raise to_error(refused, op) from refused
    return result  # type: ignore[no-any-return]


async def read_json(ctx: ActionContext, op: Op, fn: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> dict[str, Any]:
    """Like `call`, but the raw JSON (camelCase, as kubectl shows it) instead of client models."""
    response = await call(ctx, op, fn, *args, _preload_content=False, **kwargs)
    data = json.loads(response.data or b"{}")
    return data if isinstance(data, dict) else {}


def _retry_after(e: Any) -> float:
    try:
        return float((e.headers or {}).get("Retry-After", DEFAULT_RETRY_AFTER_S))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S


def to_error(e: Any, op: Op) -> HemostatError:
    """The project's error for an `ApiException` raised while doing `op`."""
    status = int(e.status or 0)
    if status == 403:
        return PermanentError(f"forbidden: cannot {op.verb} {op.resource} in namespace {op.namespace} "
                              "— grant it in the Role", code="kube_forbidden")
    if status == 401:
        return PermanentError(f"unauthorized: the apiserver refused Hemostat's credentials on {op}",
                              code="kube_unauthorized")
    if status == 404:
        what = f"{op.resource} {op.namespace}/{op.name}" if op.name else f"{op.resource} in {op.namespace}"
        return PermanentError(f"not found: {what} ({op.verb})", code="kube_not_found")
    if status == 409:
        return Conflict(f"conflict on {op}: {body_message(e)}", delay=0.0)
    if server_trouble(status):
        return TemporaryError(f"apiserver busy on {op}: HTTP {status}: {body_message(e)}",
                              code="kube_unavailable", delay=_retry_after(e))
    return PermanentError(f"{op} refused: HTTP {status}: {body_message(e)}", code="kube_refused")


async def retry_conflicts(attempt: Callable[[], Awaitable[T]], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run `attempt` (a fresh read, then a write) again on 409, at most `attempts` times."""
    for remaining in range(attempts - 1, -1, -1):
        try:
            return await attempt()
        except Conflict:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _stamp(ctx: ActionContext) -> str:
    return ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(ctx: ActionContext, ref: ObjectRef, reason: str, message: str,
               type_: str = "Normal") -> dict[str, Any]:
    """A core/v1 Event about `ref`, as `kubectl describe` lists it."""
    involved = {"apiVersion": ref.api_version, "kind": ref.kind, "namespace": ref.namespace,
                "name": ref.name}
    if ref.uid:
        involved["uid"] = ref.uid
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{ref.name}.{uuid.uuid4().hex[:16]}", "namespace": ref.namespace},
        "involvedObject": involved, "reason": reason, "message": truncate(message, 1000),
        "type": type_, "count": 1, "firstTimestamp": _stamp(ctx), "lastTimestamp": _stamp(ctx),
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": ctx.actor,
    }


async def write_event(ctx: ActionContext, ref: ObjectRef, reason: str, message: str) -> str | None:
    """Record what an executed action did on the object it touched. Never fails the action:
    returns None, or why the Event could not be written (recorded in the outcome's facts)."""
    core = api(ctx, "CoreV1Api")
    body = event_body(ctx, ref, reason, f"{message} (by {ctx.actor})")
    try:
        await call(ctx, Op("create", "events", ref.namespace), core.create_namespaced_event,
                   ref.namespace, body)
    except HemostatError as e:
        return str(e)
    return None
