"""The ``scale`` subresource (``autoscaling/v1`` Scale) over ``spec.replicas``."""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi import errors
from tests.kubeapi.api import Api, Request
from tests.kubeapi.patch import apply_patch
from tests.kubeapi.selectors import selector_string

Obj = dict[str, Any]


def scale_doc(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in (
            "name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
        "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0)),
                   "selector": selector_string(obj["spec"].get("selector") or {})},
    }


def get_scale(api: Api, req: Request) -> tuple[int, Obj]:
    return 200, scale_doc(api.existing(req))


def put_scale(api: Api, req: Request) -> tuple[int, Obj]:
    with api.store.cond:
        return _write_scale(api, req, api.existing(req), api.parse_body(req))


def patch_scale(api: Api, req: Request) -> tuple[int, Obj]:
    with api.store.cond:
        old = api.existing(req)
        patched = apply_patch(scale_doc(old), req.body, req.content_type, "Scale", False)
        return _write_scale(api, req, old, patched)


def _write_scale(api: Api, req: Request, old: Obj, scale: Obj) -> tuple[int, Obj]:
    name = old["metadata"]["name"]
    wanted = (scale.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != old["metadata"]["resourceVersion"]:
        raise errors.conflict(req.rt, name)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.ApiError(422, f'Scale.autoscaling "{name}" is invalid: spec.replicas: '
                              f"Invalid value: {replicas}: must be greater than or equal to 0",
                              "Invalid", {"name": name, "group": "autoscaling", "kind": "Scale",
                                          "causes": [{"reason": "FieldValueInvalid",
                                                      "field": "spec.replicas"}]})
    new = api.render(old, req.rt)
    new["spec"]["replicas"] = replicas
    new["metadata"].pop("resourceVersion", None)
    code, stored = api.commit(req, old, copy.deepcopy(new), "", patch=True)
    if not req.dry_run:
        stored = api.render(api.existing(req), req.rt)
    return code, scale_doc(stored)
