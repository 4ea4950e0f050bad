"""`rollback` for workloads other than Deployments: StatefulSets, DaemonSets and Argo Rollouts.

StatefulSets and DaemonSets keep their history in ControllerRevisions (apps/v1) owned by them:
the previous revision is the highest `revision` below the current one, and rolling back puts its
pod template (`data.spec.template`) back, as `kubectl rollout undo sts/NAME` does; verify waits
for `status.updateRevision` (StatefulSet) or the updated/available counts (DaemonSet) to show it
rolled out. An Argo Rollouts `Rollout` in the middle of an update is aborted (`status.abort`:
the stable ReplicaSet serves again; revert is `retry`, the abort cleared), one that finished is
undone to its previous ReplicaSet's template (`rollout.argoproj.io/revision`), as
`kubectl argo rollouts abort|undo` do. Called by `RollbackAction` when the target's `kind` says so.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from actions._kube import Op, api, call, read_json
from actions.base import Outcome
from agent.model import Change, PermanentError, Plan, Proposal
from agent.model.context import ActionContext

JSON = dict[str, Any]
ROLLOUTS = ("argoproj.io", "v1alpha1", "rollouts")
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash", "controller-revision-hash")


def _clean(template: JSON) -> JSON:
    out = {k: v for k, v in template.items() if k != "$patch"}
    labels = dict((out.get("metadata") or {}).get("labels") or {})
    for label in HASH_LABELS:
        labels.pop(label, None)
    if labels:
        out["metadata"] = {**(out.get("metadata") or {}), "labels": labels}
    return out


async def read(ctx: ActionContext) -> JSON:
    ns, name, kind = ctx.target.namespace, ctx.target.deployment or "", ctx.target.kind
    if kind == "Rollout":
        custom = api(ctx, "CustomObjectsApi")
        group, version, plural = ROLLOUTS
        return await read_json(ctx, Op("get", plural, ns, name), custom.get_namespaced_custom_object,
                               group, version, ns, plural, name)
    apps = api(ctx, "AppsV1Api")
    fn = apps.read_namespaced_stateful_set if kind == "StatefulSet" else apps.read_namespaced_daemon_set
    return await read_json(ctx, Op("get", f"{kind.lower()}s", ns, name), fn, name, ns)


async def _history(ctx: ActionContext, obj: JSON) -> list[tuple[int, JSON, JSON]]:
    """(revision, pod template, the ReplicaSet or ControllerRevision) owned by `obj`, oldest first."""
    ns, uid, kind = obj["metadata"]["namespace"], obj["metadata"]["uid"], ctx.target.kind
    apps = api(ctx, "AppsV1Api")
    if kind == "Rollout":
        listing = await read_json(ctx, Op("list", "replicasets", ns), apps.list_namespaced_replica_set, ns)
        items = [(int((rs["metadata"].get("annotations") or {}).get(ROLLOUT_REVISION, 0)),
                  rs["spec"]["template"], rs) for rs in listing.get("items", [])]
    else:
        listing = await read_json(ctx, Op("list", "controllerrevisions", ns),
                                  apps.list_namespaced_controller_revision, ns)
        items = [(int(r.get("revision", 0)), (r.get("data") or {}).get("spec", {}).get("template") or {}, r)
                 for r in listing.get("items", [])]
    owned = [(rev, _clean(t), o) for rev, t, o in items
             if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda entry: entry[0])


def _current(obj: JSON, history: list[tuple[int, JSON, JSON]]) -> int:
    """The revision running now: the one the controller names in status (a StatefulSet's
    `updateRevision`, a Rollout's `currentPodHash`), else the one whose template is the object's."""
    status = obj.get("status") or {}
    for rev, _, owned in history:
        labels = owned["metadata"].get("labels") or {}
        if owned["metadata"]["name"] == status.get("updateRevision") or (
                status.get("currentPodHash") and labels.get(HASH_LABELS[1]) == status["currentPodHash"]):
            return rev
    current = _clean(obj["spec"]["template"])
    return max((rev for rev, template, _ in history if template == current), default=0)


def _in_progress(obj: JSON) -> bool:
    status = obj.get("status") or {}
    return bool(status.get("stableRS")) and status.get("currentPodHash") != status.get("stableRS")


async def plan(proposal: Proposal, ctx: ActionContext, obj: JSON) -> Plan:
    kind = ctx.target.kind
    where = f"{kind.lower()} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
    base = {"kind": kind, "uid": obj["metadata"]["uid"]}
    default = "abort" if _in_progress(obj) else "undo"
    if kind == "Rollout" and proposal.params.get("rollout", default) == "abort":
        status = obj.get("status") or {}
        return Plan(action="rollback", target=proposal.target, subject=proposal.subject,
                    summary=f"abort the update of {where}: stable ReplicaSet {status.get('stableRS')} serves",
                    changes=(Change(where, "status.abort", bool(status.get("abort")), True),),
                    touches=(where,), state={**base, "op": "abort", "stable": status.get("stableRS")})
    history = await _history(ctx, obj)
    current = _clean(obj["spec"]["template"])
    now = _current(obj, history)
    older = [(rev, t) for rev, t, _ in history if rev < now]
    if not older:
        raise PermanentError(f"{where} has no earlier revision to roll back to", code="rollback_no_history")
    revision, template = older[-1]
    images = [c.get("image") for c in template.get("spec", {}).get("containers") or []]
    return Plan(action="rollback", target=proposal.target, subject=proposal.subject,
                summary=f"roll {where} back from revision {now} to revision {revision}",
                changes=(Change(where, "spec.template", f"revision {now}",
                                f"revision {revision} ({', '.join(map(str, images))})"),),
                touches=(where,), blast_radius={kind.lower(): 1},
                state={**base, "op": "undo", "from_revision": now, "to_revision": revision,
                       "from_template": current, "to_template": template})


async def _patch(ctx: ActionContext, obj: JSON, body: Any, status: bool = False, dry: bool = False) -> None:
    ns, name, kind = obj["metadata"]["namespace"], obj["metadata"]["name"], ctx.target.kind
    extra = {"dry_run": "All"} if dry else {}
    if kind == "Rollout":
        custom = api(ctx, "CustomObjectsApi")
        fn = custom.patch_namespaced_custom_object_status if status else custom.patch_namespaced_custom_object
        content = "application/json-patch+json" if isinstance(body, list) else "application/merge-patch+json"
        await call(ctx, Op("patch", "rollouts" + ("/status" if status else ""), ns, name), fn,
                   *ROLLOUTS[:2], ns, ROLLOUTS[2], name, body, _content_type=content, **extra)
        return
    apps = api(ctx, "AppsV1Api")
    fn = apps.patch_namespaced_stateful_set if kind == "StatefulSet" else apps.patch_namespaced_daemon_set
    await call(ctx, Op("patch", f"{kind.lower()}s", ns, name), fn, name, ns, body,
               _preload_content=False, **extra)


def _template_ops(obj: JSON, template: JSON) -> list[JSON]:
    return [{"op": "test", "path": "/metadata/uid", "value": obj["metadata"]["uid"]},
            {"op": "replace", "path": "/spec/template", "value": template}]


async def apply(plan: Plan, ctx: ActionContext, forward: bool, dry: bool = False) -> Outcome:
    """Execute (`forward`) or revert the plan; dry-run validates without changing anything."""
    obj, state = await read(ctx), plan.state
    if obj["metadata"]["uid"] != state["uid"]:
        raise PermanentError("the workload was recreated since the plan; plan again",
                             code="rollback_stale_plan")
    if state["op"] == "abort":
        if bool((obj.get("status") or {}).get("abort")) == forward:
            return Outcome(True, "nothing to change", {"changed": False})
        await _patch(ctx, obj, {"status": {"abort": forward}}, status=True, dry=dry)
        return Outcome(True, "aborted: the stable ReplicaSet serves" if forward else "retried the update",
                       {"changed": not dry})
    template = state["to_template"] if forward else state["from_template"]
    if _clean(obj["spec"]["template"]) == template:
        return Outcome(True, "already at that template: nothing changed", {"changed": False})
    await _patch(ctx, obj, _template_ops(obj, template), dry=dry)
    revision = state["to_revision"] if forward else state["from_revision"]
    return Outcome(True, f"{'rolled back to' if forward else 'rolled forward to'} revision {revision}",
                   {"changed": not dry})


def rolled_out(obj: JSON, state: JSON) -> str | None:
    """None when the plan's effect is in place and available; else what is still going on."""
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    if state["op"] == "abort":
        return None if status.get("abort") and status.get("phase") in ("Degraded", "Aborted") \
            else f"phase {status.get('phase')}, abort {status.get('abort')}"
    if int(status.get("observedGeneration") or 0) < int(obj["metadata"].get("generation") or 0):
        return "the controller has not seen the change yet"
    if _clean(spec.get("template") or {}) != state["to_template"]:
        return "the template changed again"
    if state["kind"] == "DaemonSet":
        # available counts old pods too: until every node runs the new template it is not rolled out
        want = status.get("desiredNumberScheduled", 0)
        ok = min(status.get("numberAvailable", 0), status.get("updatedNumberScheduled", 0))
    else:
        want, ok = spec.get("replicas", 1), status.get("availableReplicas", 0)
    if state["kind"] == "StatefulSet" and status.get("currentRevision") != status.get("updateRevision"):
        return f"revision {status.get('updateRevision')} still rolling out"
    return None if ok >= want else f"{ok}/{want} available"


async def wait(ctx: ActionContext, state: JSON, timeout_s: float, poll_s: float) -> str | None:
    polls = max(1, math.ceil(timeout_s / poll_s))
    waiting: str | None = None
    for poll in range(polls + 1):
        waiting = rolled_out(await read(ctx), state)
        if waiting is None or poll == polls:
            break
        await asyncio.sleep(poll_s)
    return waiting
