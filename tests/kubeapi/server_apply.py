"""Server-side apply, the simplest cases (`kubectl apply --server-side`), and `kubectl logs -f`.

`server_side_apply`: a new object is created from the applied configuration; an existing one gets
it as a merge patch (no field managers, no managedFields, no conflicts: lists are replaced whole,
as for atomic lists). `follow_log`: the log so far, then each line set later, until the pod is
gone or the server stops (a kubelet follows the container's log file the same way).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import yaml

from tests.kubeapi.errors import bad_request


def server_side_apply(store: Any, req: Any, subresource: str) -> Any:
    """The request to run instead: a create (method POST) or a merge patch."""
    try:
        applied = yaml.safe_load(req.body or b"{}")
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from exc
    if not isinstance(applied, dict):
        raise bad_request("the applied configuration must be an object")
    body = json.dumps(applied).encode()
    if not subresource and store.get(req.rt.storage, req.namespace or "", req.name or "") is None:
        return dataclasses.replace(req, method="POST", name=None, body=body, content_type="application/json")
    return dataclasses.replace(req, body=body, content_type="application/merge-patch+json")


def follow_log(api: Any, req: Any) -> Iterator[str]:
    """Read now (errors answer before any header), then stream what is added."""
    sent = api.logs.read(api.existing(req), req.query)
    return _follow(api, req, sent)


def _follow(api: Any, req: Any, sent: str) -> Iterator[str]:
    yield sent
    once = {k: v for k, v in req.query.items() if k not in ("tailLines", "sinceSeconds", "limitBytes")}
    while not api.store.closed:
        api.logs.wait(0.1)
        pod = api.store.get(req.rt.storage, req.namespace or "", req.name or "")
        if pod is None:
            return
        now = api.logs.read(api.render(pod, req.rt), once)
        if len(now) > len(sent) and now.startswith(sent):
            yield now[len(sent):]
        sent = now
