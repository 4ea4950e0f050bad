"""What `scale-up` writes when the Deployment is not the whole story: StatefulSets, KEDA, GitOps.

- A StatefulSet target is scaled through `statefulsets/scale`, as a Deployment through
  `deployments/scale`.
- An HPA that KEDA made for a `ScaledObject` (label `scaledobject.keda.sh/name`) is KEDA's: it
  puts back any edit of the HPA, so the ScaledObject's `minReplicaCount` (and
  `maxReplicaCount` when the target is above it) is raised instead.
- An object a GitOps controller auto-syncs (agent/model/gitops.py) gets its replica count put
  back by self-heal or the next sync unless the Application's `ignoreDifferences` covers
  `/spec/replicas`: the plan says so, for whoever approves it.
Used by actions/scale_up.py.
"""

from __future__ import annotations

from typing import Any

from actions import _gitops
from actions._kube import Op, api, call, read_json
from agent.model import Change
from agent.model.context import ActionContext
from agent.model.gitops import summary, undoes_live_edits

JSON = dict[str, Any]
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KEDA_LABEL = "scaledobject.keda.sh/name"


def scale_calls(ctx: ActionContext) -> tuple[str, Any, Any]:
    """(resource, read, patch) of the target's scale subresource."""
    apps = api(ctx, "AppsV1Api")
    if ctx.target.kind == "StatefulSet":
        return ("statefulsets/scale", apps.read_namespaced_stateful_set_scale,
                apps.patch_namespaced_stateful_set_scale)
    return "deployments/scale", apps.read_namespaced_deployment_scale, apps.patch_namespaced_deployment_scale


async def read_workload(ctx: ActionContext, ns: str, name: str) -> JSON:
    apps = api(ctx, "AppsV1Api")
    if ctx.target.kind == "StatefulSet":
        return await read_json(ctx, Op("get", "statefulsets", ns, name), apps.read_namespaced_stateful_set,
                               name, ns)
    return await read_json(ctx, Op("get", "deployments", ns, name), apps.read_namespaced_deployment, name, ns)


def keda_owner(hpa: JSON) -> str | None:
    """The ScaledObject that owns this HPA, if KEDA made it."""
    return (hpa["metadata"].get("labels") or {}).get(KEDA_LABEL)


async def read_scaled_object(ctx: ActionContext, name: str) -> JSON:
    ns, custom = ctx.target.namespace, api(ctx, "CustomObjectsApi")
    obj: JSON = await call(ctx, Op("get", "scaledobjects", ns, name), custom.get_namespaced_custom_object,
                           KEDA[0], KEDA[1], ns, KEDA[2], name)
    return obj


def keda_plan(scaled: JSON, target: int) -> tuple[JSON, tuple[Change, ...]]:
    spec, meta = scaled["spec"], scaled["metadata"]
    where = f"scaledobject {meta['namespace']}/{meta['name']}"
    low, high = int(spec.get("minReplicaCount", 0)), int(spec.get("maxReplicaCount", 100))
    new_low, new_high = max(low, target), max(high, target)
    changes = [Change(where, "spec.minReplicaCount", low, new_low)]
    if new_high != high:
        changes.append(Change(where, "spec.maxReplicaCount", high, new_high))
    return ({"mode": "keda", "scaledobject": meta["name"], "before_min": low, "before_max": high,
             "after_min": new_low, "after_max": new_high}, tuple(changes))


async def set_keda(ctx: ActionContext, name: str, low: int, high: int, raise_only: bool,
                   dry_run: bool = False) -> tuple[int, int] | None:
    """Set the ScaledObject's bounds; its old (min, max), or None when nothing had to change."""
    scaled = await read_scaled_object(ctx, name)
    spec = scaled["spec"]
    before = (int(spec.get("minReplicaCount", 0)), int(spec.get("maxReplicaCount", 100)))
    if before == (low, high) or (raise_only and before[0] >= low):
        return None
    ns, custom = ctx.target.namespace, api(ctx, "CustomObjectsApi")
    body = {"metadata": {"resourceVersion": scaled["metadata"]["resourceVersion"]},
            "spec": {"minReplicaCount": low, "maxReplicaCount": high}}
    await call(ctx, Op("patch", "scaledobjects", ns, name), custom.patch_namespaced_custom_object,
               KEDA[0], KEDA[1], ns, KEDA[2], name, body, _content_type="application/merge-patch+json",
               **({"dry_run": "All"} if dry_run else {}))
    return before


async def gitops_warning(ctx: ActionContext, obj: JSON) -> str:
    """"" when a GitOps controller will leave the new count alone; else why it will not."""
    facts = await _gitops.owner_facts(ctx, obj)
    if not undoes_live_edits(facts) or (facts or {}).get("ignores_replicas"):
        return ""
    assert facts is not None
    name = obj["metadata"]["name"]
    return (f"; warning: {summary(name, facts)}, which will put the replica count back "
            f"(no ignoreDifferences on /spec/replicas): scale in git, or suspend its sync")
