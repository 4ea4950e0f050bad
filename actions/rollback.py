"""Action `rollback`: what `kubectl rollout undo deployment/APP` does, planned and verified.

The previous revision is the newest ReplicaSet owned by the Deployment (ownerReferences uid)
whose `deployment.kubernetes.io/revision` is below the current one (or `params.to_revision`).
Executing replaces the Deployment's pod template with that ReplicaSet's (without the
`pod-template-hash` label) in one JSON patch that carries the resourceVersion read just before,
so a concurrent change answers 409 and the step is retried with a fresh read (three times).
The Deployment controller then makes it the newest revision, as it does for kubectl.

Refused with a reason when there is no earlier revision or the Deployment is paused. Idempotent:
a template that already equals the target changes nothing. `verify` waits (bounded) for the
rollout to be available, then re-probes `k8s-workload`; `revert` rolls forward to the recorded
template. Under Argo CD or Flux the policy's strategy decides (actions/rollback_gitops.py); from its
repo (`gitops: git-revert`): actions/rollback_git.py; other kinds: actions/rollback_workloads.py.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

from actions import rollback_git, rollback_gitops, rollback_workloads
from actions._kube import ObjectRef, Op, api, call, read_json, retry_conflicts, write_event
from actions.base import Outcome
from agent.model import Change, PermanentError, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext
from agent.model.rbac import EVENTS, KubeRule, gitops_rules

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
STILL_BAD = frozenset({"replicas_unavailable", "rollout_stuck", "crash_loop", "oom_killed", "pods_pending"})
JSON = dict[str, Any]
STUCK = "stuck: "


def _revision(obj: JSON) -> int:
    return int((obj.get("metadata", {}).get("annotations") or {}).get(REVISION, "0") or 0)


def clean_template(template: JSON) -> JSON:
    """The pod template without the `pod-template-hash` label the controller adds to ReplicaSets."""
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return clean


def _name(ctx: ActionContext) -> tuple[str, str]:
    if not ctx.target.deployment:
        raise PermanentError(f"target {ctx.target.name} names no deployment", code="unconfigured")
    return ctx.target.namespace, ctx.target.deployment


async def _read(ctx: ActionContext) -> JSON:
    ns, name = _name(ctx)
    apps = api(ctx, "AppsV1Api")
    return await read_json(ctx, Op("get", "deployments", ns, name), apps.read_namespaced_deployment, name, ns)


async def _owned(ctx: ActionContext, deploy: JSON) -> list[JSON]:
    ns, uid = deploy["metadata"]["namespace"], deploy["metadata"]["uid"]
    labels = (deploy["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    apps = api(ctx, "AppsV1Api")
    listing = await read_json(ctx, Op("list", "replicasets", ns), apps.list_namespaced_replica_set, ns,
                              label_selector=selector)
    return [rs for rs in listing.get("items", [])
            if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]


def _refuse_paused(deploy: JSON) -> None:
    if deploy["spec"].get("paused"):
        meta = deploy["metadata"]
        raise PermanentError(
            f"deployment {meta['namespace']}/{meta['name']} is paused: resume it first "
            f"(kubectl rollout resume deployment/{meta['name']}); not rolling back a paused rollout",
            code="rollback_paused")


def _pick(deploy: JSON, owned: list[JSON], to_revision: int | None) -> tuple[int, JSON]:
    """(current revision, the ReplicaSet to roll back to), as kubectl's LastRevision picks it."""
    current_template = clean_template(deploy["spec"]["template"])
    matching = [_revision(rs) for rs in owned if clean_template(rs["spec"]["template"]) == current_template]
    current = max(matching or [_revision(deploy)])
    older = [rs for rs in owned if (_revision(rs) == to_revision if to_revision else _revision(rs) < current)]
    if not older:
        meta = deploy["metadata"]
        wanted = f"revision {to_revision}" if to_revision else "previous revision"
        raise PermanentError(f"deployment {meta['namespace']}/{meta['name']} has no {wanted} to roll "
                             f"back to (current revision {current})", code="rollback_no_history")
    return current, max(older, key=_revision)


def _containers(template: JSON) -> dict[str, JSON]:
    return {c["name"]: c for c in template.get("spec", {}).get("containers") or []}


def _env(container: JSON) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def diff(where: str, before: JSON, after: JSON) -> tuple[Change, ...]:
    """Images and env values that differ between two pod templates, container by container."""
    old, new = _containers(before), _containers(after)
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name, {}), new.get(name, {})
        if a.get("image") != b.get("image"):
            changes.append(Change(where, f"containers[{name}].image", a.get("image"), b.get("image")))
        env_a, env_b = _env(a), _env(b)
        for var in sorted(env_a.keys() | env_b.keys()):
            if env_a.get(var) != env_b.get(var):
                field = f"containers[{name}].env[{var}]"
                changes.append(Change(where, field, env_a.get(var), env_b.get(var)))
    if not changes and before != after:
        changes.append(Change(where, "spec.template", "current template", "previous template"))
    return tuple(changes)


def _ref(deploy: JSON) -> ObjectRef:
    meta = deploy["metadata"]
    return ObjectRef("apps/v1", "Deployment", meta["namespace"], meta["name"], meta.get("uid", ""))


async def _patch(ctx: ActionContext, deploy: JSON, template: JSON, dry_run: bool) -> None:
    meta = deploy["metadata"]
    ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
           {"op": "replace", "path": "/spec/template", "value": template}]
    extra = {"dry_run": "All"} if dry_run else {}
    apps = api(ctx, "AppsV1Api")
    await call(ctx, Op("patch", "deployments", meta["namespace"], meta["name"]),
               apps.patch_namespaced_deployment, meta["name"], meta["namespace"], ops,
               _preload_content=False, **extra)


def _rollout(deploy: JSON, template: JSON) -> str | None:
    """None when the rollout to `template` is complete and available; else what is still going on."""
    spec, status = deploy["spec"], deploy.get("status") or {}
    conditions = status.get("conditions") or []
    progressing: JSON = next((c for c in conditions if c.get("type") == "Progressing"), {})
    if clean_template(spec["template"]) != template:
        return "the deployment's template changed again"
    want = int(spec.get("replicas", 1))
    # until the controller observes the change, its conditions are the old (stuck) rollout's
    if int(status.get("observedGeneration", 0)) < int(deploy["metadata"].get("generation", 0)):
        return "the controller has not seen the change yet"
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return STUCK + str(progressing.get("message", "progress deadline exceeded"))
    updated, available = int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0))
    if updated < want or int(status.get("replicas", 0)) > updated or available < updated:
        return f"{updated}/{want} updated, {available} available"
    return None


class RollbackAction:
    name = "rollback"
    summary = "roll the deployment back to its previous revision (kubectl rollout undo)"
    kube_rules = (
        KubeRule("apps", "deployments", ("get", "patch"), "target", "put the previous template back"),
        KubeRule("apps", "statefulsets", ("get", "patch"), "target", "likewise, for a StatefulSet"),
        KubeRule("apps", "daemonsets", ("get", "patch"), "target", "likewise, for a DaemonSet"),
        KubeRule("apps", "controllerrevisions", ("list",), why="their revisions"),
        KubeRule("argoproj.io", "rollouts", ("get", "patch"), "target", "undo an Argo Rollout"),
        KubeRule("argoproj.io", "rollouts/status", ("patch",), "target", "abort or retry its update"),
        KubeRule("apps", "replicasets", ("list",), why="the revisions it owns"), EVENTS,
        *gitops_rules(("get", "patch"), "who owns it; suspend and restore auto-sync, sync a revision"),
    )
    mutates = True
    settle_s = 10.0  # a PATCH in flight lands within the API request timeout

    def __init__(self, poll_interval_s: float = 2.0, verify_timeout_s: float = 300.0,
                 reprobe: str = "k8s-workload") -> None:
        self.poll_interval_s, self.verify_timeout_s, self.reprobe = poll_interval_s, verify_timeout_s, reprobe

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        return None if target.deployment or target.gitops else f"target {target.name} names no deployment"

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        live: Callable[[], Awaitable[Plan]]
        if ctx.target.gitops == "git-revert":  # deployed from its repo: nothing in a cluster to read
            return await rollback_git.plan(proposal, ctx)
        if ctx.target.kind != "Deployment":  # StatefulSet, DaemonSet, Rollout
            obj = await rollback_workloads.read(ctx)
            live = functools.partial(rollback_workloads.plan, proposal, ctx, obj)
        else:
            obj = await _read(ctx)
            _refuse_paused(obj)
            live = functools.partial(self._live_plan, proposal, ctx, obj)
        return await rollback_gitops.plan(proposal, ctx, obj, live) or await live()

    async def _live_plan(self, proposal: Proposal, ctx: ActionContext, deploy: JSON) -> Plan:
        to_revision = proposal.params.get("to_revision")
        current, rs = _pick(deploy, await _owned(ctx, deploy), int(to_revision) if to_revision else None)
        before, after = clean_template(deploy["spec"]["template"]), clean_template(rs["spec"]["template"])
        ns, name = _name(ctx)
        where = f"deployment {ns}/{name}"
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"roll {where} back from revision {current} to revision {_revision(rs)}"
                    + (" (already there: nothing to do)" if before == after else ""),
            changes=diff(where, before, after), touches=(where,),
            state={"namespace": ns, "deployment": name, "uid": deploy["metadata"]["uid"],
                   "from_revision": current, "to_revision": _revision(rs),
                   "from_template": before, "to_template": after},
            blast_radius={"deployments": 1, "replicas": int(deploy["spec"].get("replicas", 1))},
        )

    def _live(self, plan: Plan, ctx: ActionContext, forward: bool) -> Awaitable[Outcome]:
        """The live template change, back (`forward`: executing) or forth (reverting)."""
        if "kind" in plan.state:
            return rollback_workloads.apply(plan, ctx, forward=forward)
        if forward:
            return self._roll(plan, ctx, plan.state["to_template"], "HemostatRollback",
                              f"rolled back to revision {plan.state['to_revision']}")
        return self._roll(plan, ctx, plan.state["from_template"], "HemostatRollbackReverted",
                          f"rolled forward to the template of revision {plan.state['from_revision']}")

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        live = functools.partial(self._live, plan, ctx, True)
        return await rollback_gitops.execute(plan, ctx, live) if "strategy" in plan.state else await live()

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        live = functools.partial(self._live, plan, ctx, False)
        return await rollback_gitops.revert(plan, ctx, live) if "strategy" in plan.state else await live()

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if plan.state.get("strategy") in ("git-revert", "argocd"):
            return Outcome(True, f"{plan.summary} (dry run: nothing pushed or patched)", {"changed": False})
        if "kind" in plan.state:
            return await rollback_workloads.apply(plan, ctx, forward=True, dry=True)
        async def attempt() -> bool:  # the controller's status writes may 409 the read's version
            deploy = await self._fresh(plan, ctx)
            if clean_template(deploy["spec"]["template"]) == plan.state["to_template"]:
                return False
            await _patch(ctx, deploy, plan.state["to_template"], dry_run=True)
            return True

        if not await retry_conflicts(attempt):
            return Outcome(True, "already at the target template: nothing to do", {"changed": False})
        return Outcome(True, f"the apiserver accepts the rollback to revision {plan.state['to_revision']} "
                             "(dryRun=All, nothing changed)", {"changed": False})

    async def _fresh(self, plan: Plan, ctx: ActionContext) -> JSON:
        deploy = await _read(ctx)
        _refuse_paused(deploy)
        if deploy["metadata"]["uid"] != plan.state["uid"]:
            raise PermanentError("the deployment was deleted and recreated since the plan; plan again",
                                 code="rollback_stale_plan")
        return deploy

    async def _roll(self, plan: Plan, ctx: ActionContext, template: JSON, reason: str, done: str) -> Outcome:
        async def attempt() -> tuple[JSON, bool]:
            deploy = await self._fresh(plan, ctx)
            if clean_template(deploy["spec"]["template"]) == template:
                return deploy, False
            await _patch(ctx, deploy, template, dry_run=False)
            return deploy, True

        deploy, changed = await retry_conflicts(attempt)
        if not changed:
            return Outcome(True, "the deployment already has that template: nothing changed",
                           {"changed": False})
        event_error = await write_event(ctx, _ref(deploy), reason, f"Hemostat {done}")
        facts = {"changed": True, **({"event_error": event_error} if event_error else {})}
        return Outcome(True, f"deployment {plan.state['namespace']}/{plan.state['deployment']} {done}", facts)

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if "strategy" in plan.state:
            return await rollback_gitops.verify(plan, ctx, lambda: self._still_bad(ctx),
                                                lambda: self._verify_live(plan, ctx), self.poll_interval_s,
                                                lambda: self._images(ctx))
        return await self._verify_live(plan, ctx)

    async def _images(self, ctx: ActionContext) -> list[str]:
        obj = await rollback_workloads.read(ctx) if ctx.target.kind != "Deployment" else await _read(ctx)
        return [str(c.get("image")) for c in _containers(obj["spec"]["template"]).values()]

    async def _still_bad(self, ctx: ActionContext) -> Outcome | None:
        findings = [f for f in await ctx.reprobe(ctx.target, self.reprobe) if f.kind in STILL_BAD]
        if findings:
            return Outcome(False, f"rolled out, but still: {findings[0].summary}",
                           {"findings": [f.kind for f in findings]})
        return None

    async def _verify_live(self, plan: Plan, ctx: ActionContext) -> Outcome:
        waiting = await self._wait(plan, ctx)
        if waiting is not None:
            return Outcome(False, f"rollout not available after {self.verify_timeout_s:g}s: {waiting}",
                           {"waiting": waiting})
        bad = await self._still_bad(ctx)
        revision = plan.state.get("to_revision")
        done = "aborted: the stable ReplicaSet serves" if revision is None \
            else f"revision {revision}'s template is rolled out and available"
        return bad or Outcome(True, done, {"revision": revision})

    async def _wait(self, plan: Plan, ctx: ActionContext) -> str | None:
        if "kind" in plan.state:
            return await rollback_workloads.wait(ctx, plan.state, self.verify_timeout_s, self.poll_interval_s)
        polls = max(1, math.ceil(self.verify_timeout_s / self.poll_interval_s))
        waiting: str | None = None
        for poll in range(polls + 1):
            waiting = _rollout(await _read(ctx), plan.state["to_template"])
            if waiting is None or waiting.startswith(STUCK) or poll == polls:
                break
            await asyncio.sleep(self.poll_interval_s)
        return waiting
