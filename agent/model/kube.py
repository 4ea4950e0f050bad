"""Kubernetes client plumbing shared by the probes and the actions (which may not import each
other): typed APIs over a context's ApiClient, which HTTP statuses are the server's trouble, and
the apiserver's message made safe to show. The official client is imported only when called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.model.redact import redact, truncate


def kube_api(client_factory: Callable[[], Any], kind: str) -> Any:
    """`kube_api(ctx.kube, "AppsV1Api")`: a typed API of the official client."""
    import kubernetes.client

    return getattr(kubernetes.client, kind)(client_factory())


def server_trouble(status: int) -> bool:
    """Worth a retry and counted by the breaker: no answer, 429, or a 5xx."""
    return status == 0 or status == 429 or status >= 500


def call_blocking(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Run the call (in a worker thread); a client error (4xx) comes back as a value so the
    breaker, which sees only raised errors, does not count it against the apiserver."""
    from kubernetes.client.exceptions import ApiException

    try:
        return fn(*args, **kwargs), None
    except ApiException as e:
        if server_trouble(int(e.status or 0)):
            raise
        return None, e


def body_message(e: Any) -> str:
    """The apiserver's `Status.message` (or the raw body), redacted and truncated."""
    body = e.body.decode(errors="replace") if isinstance(e.body, bytes) else str(e.body or "")
    try:
        message = json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        message = body
    return truncate(redact(str(message)), 200)
