"""The GitOps controller's objects, as the actions read and change them.

`owner_facts` finds who manages a live object (agent/model/gitops.py) and reads its Application,
Kustomization or HelmRelease; `suspend_sync`/`restore_sync` turn auto-sync off and back on
(Argo CD: `spec.syncPolicy.automated` removed and restored as recorded, guarded by a JSON-patch
`test`; Flux: `spec.suspend`); `sync_revision` asks Argo CD to sync one revision, as `argocd app
rollback` does (an `operation`); `wait_synced` polls until the controller reports a revision
synced and healthy. Used by `rollback`'s GitOps strategies.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from actions._kube import Op, api, call, read_json
from agent.model import HemostatError
from agent.model.context import ActionContext
from agent.model.gitops import KINDS, Owner, describe, owner_of, summary, undoes_live_edits

JSON = dict[str, Any]


def _where(facts: JSON) -> tuple[str, str, str, str, str]:
    group, version, plural = KINDS[facts["kind"]]
    return group, version, facts["namespace"], plural, facts["name"]


async def read_controller(ctx: ActionContext, facts: JSON) -> JSON:
    group, version, ns, plural, name = _where(facts)
    custom = api(ctx, "CustomObjectsApi")
    obj: JSON = await call(ctx, Op("get", plural, ns, name), custom.get_namespaced_custom_object,
                           group, version, ns, plural, name)
    return obj


async def owner_facts(ctx: ActionContext, obj: JSON) -> JSON | None:
    """Facts about the GitOps owner of `obj`, or None when nothing manages it."""
    owner = owner_of(obj)
    if owner is None:
        return None
    facts = describe(owner, None, obj.get("kind") or "Deployment")
    try:
        controller = await read_controller(ctx, facts)
    except HemostatError as e:
        if e.code == "kube_not_found" and owner.confirmed_by_label_only:
            return None  # a Helm chart's instance label, not Argo CD's
        return {**facts, "error": str(e)}
    return describe(Owner(owner.kind, owner.namespace, owner.name, owner.via), controller,
                    obj.get("kind") or "Deployment")


async def configmap_warning(ctx: ActionContext, name: str) -> str:
    """"" unless a GitOps controller auto-syncs ConfigMap `name`; else that it will put it back."""
    core, ns = api(ctx, "CoreV1Api"), ctx.target.namespace
    configmap = await read_json(ctx, Op("get", "configmaps", ns, name), core.read_namespaced_config_map,
                                name, ns)
    facts = await owner_facts(ctx, configmap)
    if not undoes_live_edits(facts):
        return ""
    assert facts is not None
    return (f"; warning: {summary(f'configmap {ns}/{name}', facts)}, which will put the key back: "
            "change it in git, or move the flag to a flag service")


async def _patch(ctx: ActionContext, facts: JSON, body: Any) -> JSON:
    group, version, ns, plural, name = _where(facts)
    custom = api(ctx, "CustomObjectsApi")
    kind = "application/json-patch+json" if isinstance(body, list) else "application/merge-patch+json"
    out: JSON = await call(ctx, Op("patch", plural, ns, name), custom.patch_namespaced_custom_object,
                           group, version, ns, plural, name, body, _content_type=kind)
    return out


def recorded_sync(controller: JSON, kind: str) -> Any:
    """What `restore_sync` puts back: Argo CD's `automated` block, or Flux's `suspend` flag."""
    spec = controller.get("spec") or {}
    if kind == "Application":
        return (spec.get("syncPolicy") or {}).get("automated")
    return bool(spec.get("suspend"))


async def suspend_sync(ctx: ActionContext, facts: JSON) -> bool:
    """Turn auto-sync off; False when it already was."""
    controller = await read_controller(ctx, facts)
    current = recorded_sync(controller, facts["kind"])
    if facts["kind"] != "Application":
        if current:
            return False
        await _patch(ctx, facts, {"spec": {"suspend": True}})
        return True
    if current is None:
        return False
    await _patch(ctx, facts, [{"op": "test", "path": "/spec/syncPolicy/automated", "value": current},
                              {"op": "remove", "path": "/spec/syncPolicy/automated"}])
    return True


async def restore_sync(ctx: ActionContext, facts: JSON, recorded: Any) -> bool:
    """Put auto-sync back as recorded before the mitigation; False when it already is."""
    controller = await read_controller(ctx, facts)
    if recorded_sync(controller, facts["kind"]) == recorded:
        return False
    body = {"spec": {"suspend": bool(recorded)}} if facts["kind"] != "Application" else \
        {"spec": {"syncPolicy": {"automated": recorded}}}
    await _patch(ctx, facts, body)
    return True


async def sync_revision(ctx: ActionContext, facts: JSON, revision: str) -> None:
    """Ask Argo CD to sync `revision` once (what `argocd app rollback` sets)."""
    await _patch(ctx, facts, {"operation": {"sync": {"revision": revision},
                                            "initiatedBy": {"username": ctx.actor}}})


def synced_revision(controller: JSON, kind: str) -> str:
    status = controller.get("status") or {}
    if kind == "Application":
        return str((status.get("sync") or {}).get("revision") or "")
    return str(status.get("lastAppliedRevision") or "").rsplit(":", 1)[-1]


async def wait_synced(ctx: ActionContext, facts: JSON, done: Callable[[str], bool],
                      timeout_s: float, poll_s: float) -> str | None:
    """None once the controller reports a revision `done` accepts, synced and healthy; else
    what it reported last."""
    owner = Owner(facts["kind"], facts["namespace"], facts["name"], facts["via"])
    polls = max(1, math.ceil(timeout_s / poll_s))
    waiting = "not read yet"
    for poll in range(polls + 1):
        controller = await read_controller(ctx, facts)
        health = describe(owner, controller).get("health")
        revision = synced_revision(controller, facts["kind"])
        if done(revision) and health == "Healthy":
            return None
        waiting = f"revision {revision[:12] or 'none'} synced, health {health}"
        if poll < polls:
            await asyncio.sleep(poll_s)
    return waiting
