"""Kubernetes client plumbing shared by the probes and the actions (which may not import each
other): typed APIs over a context's ApiClient (or the plain GETs of `RawApi` for the probes'
reads), which HTTP statuses are the server's trouble, and the apiserver's message made safe to
show. The official client is imported only when called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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


# The reads every pass makes, sent as plain GETs through the ApiClient: the typed API classes of
# the official client cost more to import than the calls take (CoreV1Api alone is 4.5 MB of
# source, about 0.6 s of a one-shot `hemostat diagnose`). Any other method gets the typed API.
# (kind, method) -> the path, and the typed method's positional parameters in order.
NAMED, NS = ("name", "namespace"), ("namespace",)
RAW_READS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("AppsV1Api", "read_namespaced_deployment"):
        ("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", NAMED),
    ("AppsV1Api", "read_namespaced_stateful_set"):
        ("/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}", NAMED),
    ("AppsV1Api", "read_namespaced_daemon_set"):
        ("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}", NAMED),
    ("CustomObjectsApi", "get_namespaced_custom_object"):
        ("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
         ("group", "version", *NS, "plural", "name")),
    ("AppsV1Api", "list_namespaced_controller_revision"):
        ("/apis/apps/v1/namespaces/{namespace}/controllerrevisions", NS),
    ("AppsV1Api", "list_namespaced_replica_set"): ("/apis/apps/v1/namespaces/{namespace}/replicasets", NS),
    ("CoreV1Api", "list_namespaced_pod"): ("/api/v1/namespaces/{namespace}/pods", NS),
    ("CoreV1Api", "read_namespaced_pod_log"): ("/api/v1/namespaces/{namespace}/pods/{name}/log", NAMED),
    ("AutoscalingV2Api", "list_namespaced_horizontal_pod_autoscaler"):
        ("/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", NS),
    ("CustomObjectsApi", "list_namespaced_custom_object"):
        ("/apis/{group}/{version}/namespaces/{namespace}/{plural}", ("group", "version", *NS, "plural")),
    ("DiscoveryV1Api", "list_namespaced_endpoint_slice"):
        ("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", NS),
}


class RawApi:
    """Looks like `kubernetes.client.<kind>(api_client)` for the methods in `RAW_READS`, which it
    answers as the typed API does with `_preload_content=False` (the urllib3 response; an
    `ApiException` for a non-2xx status); other methods are the typed API's own."""

    def __init__(self, client_factory: Callable[[], Any], kind: str) -> None:
        self._client_factory, self._kind = client_factory, kind

    def __getattr__(self, method: str) -> Any:
        raw = RAW_READS.get((self._kind, method))
        if raw is None:
            return getattr(kube_api(self._client_factory, self._kind), method)
        return RawRead(self._client_factory, *raw)


@dataclass(frozen=True)
class RawRead:
    """One of the `RAW_READS`: called, it is the typed method (through the official client's
    ApiClient, built only then); `route` is the same request as a path and a query, which the
    plain reader of `agent/model/kube_http.py` sends instead."""

    client_factory: Callable[[], Any]
    path: str
    params: tuple[str, ...]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The GET through the official client's ApiClient: the urllib3 response, an
        `ApiException` for a non-2xx status, as the typed method with `_preload_content=False`."""
        from kubernetes.client.exceptions import ApiException

        path, query = self.route(*args, **kwargs)
        client = self.client_factory()
        request = client.param_serialize(method="GET", resource_path=path, query_params=query,
                                         header_params={"Accept": "application/json"},
                                         auth_settings=["BearerToken"])
        response = client.call_api(*request, _request_timeout=kwargs.get("_request_timeout"))
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def route(self, *args: Any, **kwargs: Any) -> tuple[str, list[tuple[str, str]]]:
        """(path, query): `{params}` from `args` (in the typed method's order), the keyword
        arguments as query parameters (snake_case to camelCase; `_options` are the client's)."""
        values = dict(zip(self.params, args, strict=True))
        path = self.path.format(**{k: quote(str(v), safe="") for k, v in values.items()})
        return path, [(_camel(k), _query_value(v)) for k, v in kwargs.items()
                      if not k.startswith("_") and v is not None]


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
