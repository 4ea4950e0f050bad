"""Action `scale-up`: more replicas for the target's Deployment, within the policy's blast radius.

`params.replicas` asks for a count, `params.factor` (default 2) for a multiple of the current
count; `ctx.limits` caps it (`max_factor` of the current count, `max_replicas` in all) and the
plan says which limit capped it. A scale-up never scales down: a count already at or above the
target is left alone, which is also what makes a second `execute` a no-op.

Without an HPA the `scale` subresource is patched. With an HPA targeting the Deployment, scaling
it directly would be undone at the HPA's next sync, so its `minReplicas` is raised instead (and
`maxReplicas` with it when the target is above it). `revert` returns to the recorded count or
bounds. Writes carry the resourceVersion just read; a 409 is retried with a fresh read.
Called by the executor; Kubernetes plumbing lives in `actions/_kube.py`.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from actions import scale_targets
from actions._kube import ObjectRef, Op, api, call, read_json, retry_conflicts, write_event
from actions.base import Outcome
from agent.model import Change, PermanentError, Plan, Proposal, TargetSpec
from agent.model.context import ActionContext
from agent.model.rbac import EVENTS, KubeRule, gitops_rules

JSON = dict[str, Any]
DEFAULT_FACTOR = 2.0
STILL_BAD = frozenset({"cpu_saturated", "memory_saturated", "hpa_at_max", "replicas_unavailable"})


@dataclass(frozen=True)
class Sizing:
    """The target count and which limits lowered it (pure, from the params and limits)."""

    wanted: int
    target: int
    capped: tuple[str, ...]


def size(current: int, params: JSON, limits: JSON) -> Sizing:
    """How many replicas to ask for: the request, capped by `max_factor` and `max_replicas`."""
    if params.get("replicas") is not None:
        wanted = int(params["replicas"])
    else:
        factor = float(params.get("factor", DEFAULT_FACTOR))
        wanted = max(math.ceil(current * factor), current + 1)
    target, capped = wanted, list[str]()
    if limits.get("max_factor") is not None:
        by_factor = max(math.floor(max(current, 1) * float(limits["max_factor"])), current)
        if target > by_factor:
            target, capped = by_factor, [*capped, f"max_factor {limits['max_factor']:g}"]
    if limits.get("max_replicas") is not None and target > int(limits["max_replicas"]):
        target, capped = int(limits["max_replicas"]), [*capped, f"max_replicas {limits['max_replicas']}"]
    return Sizing(wanted, max(target, current), tuple(capped))


def _name(ctx: ActionContext) -> tuple[str, str]:
    if not ctx.target.deployment:
        raise PermanentError(f"target {ctx.target.name} names no deployment", code="unconfigured")
    return ctx.target.namespace, ctx.target.deployment


async def _scale(ctx: ActionContext) -> JSON:
    ns, name = _name(ctx)
    resource, read, _ = scale_targets.scale_calls(ctx)
    return await read_json(ctx, Op("get", resource, ns, name), read, name, ns)


async def _hpa(ctx: ActionContext) -> JSON | None:
    """The HPA whose scaleTargetRef is the target's Deployment, if any."""
    ns, name = _name(ctx)
    autoscaling = api(ctx, "AutoscalingV2Api")
    listing = await read_json(ctx, Op("list", "horizontalpodautoscalers", ns),
                              autoscaling.list_namespaced_horizontal_pod_autoscaler, ns)
    hpas: list[JSON] = listing.get("items", [])
    return next((hpa for hpa in hpas if _targets(hpa, ctx.target.kind, name)), None)


def _targets(hpa: JSON, kind: str, name: str) -> bool:
    ref = hpa["spec"].get("scaleTargetRef") or {}
    return ref.get("kind") == kind and ref.get("name") == name


async def _read_hpa(ctx: ActionContext, name: str) -> JSON:
    autoscaling = api(ctx, "AutoscalingV2Api")
    ns = ctx.target.namespace
    return await read_json(ctx, Op("get", "horizontalpodautoscalers", ns, name),
                           autoscaling.read_namespaced_horizontal_pod_autoscaler, name, ns)


async def _patch_scale(ctx: ActionContext, scale: JSON, replicas: int, dry_run: bool) -> None:
    ns, name = _name(ctx)
    body = {"metadata": {"resourceVersion": scale["metadata"]["resourceVersion"]},
            "spec": {"replicas": replicas}}
    resource, _, patch = scale_targets.scale_calls(ctx)
    await call(ctx, Op("patch", resource, ns, name), patch,
               name, ns, body, _preload_content=False, **({"dry_run": "All"} if dry_run else {}))


async def _patch_hpa(ctx: ActionContext, hpa: JSON, bounds: JSON, dry_run: bool) -> None:
    meta = hpa["metadata"]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": bounds}
    autoscaling = api(ctx, "AutoscalingV2Api")
    await call(ctx, Op("patch", "horizontalpodautoscalers", meta["namespace"], meta["name"]),
               autoscaling.patch_namespaced_horizontal_pod_autoscaler, meta["name"], meta["namespace"],
               body, _preload_content=False, **({"dry_run": "All"} if dry_run else {}))


def _hpa_plan(hpa: JSON, sizing: Sizing) -> tuple[JSON, tuple[Change, ...]]:
    spec, where = hpa["spec"], f"hpa {hpa['metadata']['namespace']}/{hpa['metadata']['name']}"
    low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
    new_low, new_high = max(low, sizing.target), max(high, sizing.target)
    changes = [Change(where, "spec.minReplicas", low, new_low)]
    if new_high != high:
        changes.append(Change(where, "spec.maxReplicas", high, new_high))
    state = {"mode": "hpa", "hpa": hpa["metadata"]["name"], "before_min": low, "before_max": high,
             "after_min": new_low, "after_max": new_high}
    return state, tuple(changes)


class ScaleUpAction:
    name = "scale-up"
    summary = "add replicas to the deployment (scale subresource, or the HPA's minReplicas)"
    kube_rules = (
        KubeRule("apps", "deployments/scale", ("get", "patch"), "target", "raise replicas"),
        KubeRule("apps", "deployments", ("get",), "target", "wait for the replicas to be available"),
        KubeRule("apps", "statefulsets/scale", ("get", "patch"), "target", "likewise, for a StatefulSet"),
        KubeRule("apps", "statefulsets", ("get",), "target", "likewise, for a StatefulSet"),
        KubeRule("keda.sh", "scaledobjects", ("get", "patch"), "target",
                 "raise a KEDA ScaledObject's minReplicaCount (KEDA undoes HPA edits)"),
        *gitops_rules(("get",), "does a GitOps controller undo the new count"),
        KubeRule("autoscaling", "horizontalpodautoscalers", ("list",), why="find the HPA targeting it"),
        KubeRule("autoscaling", "horizontalpodautoscalers", ("get", "patch"), "target",
                 "raise the HPA's minReplicas"),
        EVENTS,
    )
    mutates = True
    settle_s = 10.0  # a PATCH in flight lands within the API request timeout

    def __init__(self, poll_interval_s: float = 2.0, verify_timeout_s: float = 180.0,
                 reprobe: str = "k8s-workload") -> None:
        self.poll_interval_s, self.verify_timeout_s, self.reprobe = poll_interval_s, verify_timeout_s, reprobe

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        return None if target.deployment else f"target {target.name} names no deployment"

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        ns, name = _name(ctx)
        current = int((await _scale(ctx))["spec"].get("replicas", 0))
        sizing = size(current, proposal.params, ctx.limits)
        hpa = await _hpa(ctx)
        where = f"{ctx.target.kind.lower()} {ns}/{name}"
        keda = scale_targets.keda_owner(hpa) if hpa is not None else None
        if keda is not None:
            written = await scale_targets.read_scaled_object(ctx, keda)
            state, changes = scale_targets.keda_plan(written, sizing.target)
            touches, via = (f"scaledobject {ns}/{keda}",), f" via scaledobject {keda} minReplicaCount"
        elif hpa is not None:
            written, (state, changes) = hpa, _hpa_plan(hpa, sizing)
            hpa_name = hpa["metadata"]["name"]
            touches, via = (f"hpa {ns}/{hpa_name}",), f" via hpa {hpa_name} minReplicas"
        else:
            written = await scale_targets.read_workload(ctx, ns, name)
            state = {"mode": "replicas", "before": current, "after": sizing.target}
            changes, touches, via = (Change(where, "spec.replicas", current, sizing.target),), (where,), ""
        capped = f" (capped by {', '.join(sizing.capped)}; asked {sizing.wanted})" if sizing.capped else ""
        warning = await scale_targets.gitops_warning(ctx, written)
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=f"scale {where} from {current} to {sizing.target} replicas{via}{capped}{warning}",
            changes=changes, touches=touches,
            state={**state, "namespace": ns, "deployment": name, "current": current,
                   "target": sizing.target, "wanted": sizing.wanted, "capped": list(sizing.capped)},
            blast_radius={"replicas": sizing.target, "factor": round(sizing.target / max(current, 1), 2)},
        )

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if plan.state["mode"] == "keda":
            return await self._set_keda(plan, ctx, plan.state["after_min"], plan.state["after_max"], True)
        if plan.state["mode"] == "hpa":
            bounds = {"minReplicas": plan.state["after_min"], "maxReplicas": plan.state["after_max"]}
            return await self._set_hpa(plan, ctx, bounds, raise_only=True)
        return await self._set_replicas(plan, ctx, plan.state["after"], raise_only=True)

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if plan.state["mode"] == "keda":
            return await self._set_keda(plan, ctx, plan.state["before_min"], plan.state["before_max"], False)
        if plan.state["mode"] == "hpa":
            bounds = {"minReplicas": plan.state["before_min"], "maxReplicas": plan.state["before_max"]}
            return await self._set_hpa(plan, ctx, bounds, raise_only=False)
        return await self._set_replicas(plan, ctx, plan.state["before"], raise_only=False)

    async def _set_replicas(self, plan: Plan, ctx: ActionContext, replicas: int, raise_only: bool) -> Outcome:
        async def attempt() -> int:
            scale = await _scale(ctx)
            now = int(scale["spec"].get("replicas", 0))
            if now == replicas or (raise_only and now > replicas):
                return now
            await _patch_scale(ctx, scale, replicas, dry_run=False)
            return now

        before = await retry_conflicts(attempt)
        where = f"deployment {plan.state['namespace']}/{plan.state['deployment']}"
        if before == replicas or (raise_only and before > replicas):
            return Outcome(True, f"{where} already has {before} replicas: nothing changed",
                           {"changed": False})
        ref = ObjectRef("apps/v1", "Deployment", plan.state["namespace"], plan.state["deployment"])
        return await _recorded(ctx, ref, "HemostatScaleUp" if raise_only else "HemostatScaleUpReverted",
                               f"{where} scaled from {before} to {replicas} replicas")

    async def _set_hpa(self, plan: Plan, ctx: ActionContext, bounds: JSON, raise_only: bool) -> Outcome:
        async def attempt() -> JSON:
            hpa = await _read_hpa(ctx, plan.state["hpa"])
            spec = {"minReplicas": int(hpa["spec"].get("minReplicas", 1)),
                    "maxReplicas": int(hpa["spec"]["maxReplicas"])}
            if spec == bounds or (raise_only and spec["minReplicas"] >= bounds["minReplicas"]):
                return {}
            await _patch_hpa(ctx, hpa, bounds, dry_run=False)
            return spec

        before = await retry_conflicts(attempt)
        where = f"hpa {plan.state['namespace']}/{plan.state['hpa']}"
        if not before:
            return Outcome(True, f"{where} already at minReplicas {bounds['minReplicas']}: nothing changed",
                           {"changed": False})
        ref = ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", plan.state["namespace"],
                        plan.state["hpa"])
        return await _recorded(ctx, ref, "HemostatScaleUp" if raise_only else "HemostatScaleUpReverted",
                               f"{where} bounds {before['minReplicas']}-{before['maxReplicas']} -> "
                               f"{bounds['minReplicas']}-{bounds['maxReplicas']}")

    async def _set_keda(self, plan: Plan, ctx: ActionContext, low: int, high: int,
                        raise_only: bool) -> Outcome:
        name = plan.state["scaledobject"]
        before = await retry_conflicts(lambda: scale_targets.set_keda(ctx, name, low, high, raise_only))
        where = f"scaledobject {plan.state['namespace']}/{name}"
        if before is None:
            return Outcome(True, f"{where} already at minReplicaCount {low}: nothing changed",
                           {"changed": False})
        ref = ObjectRef("keda.sh/v1alpha1", "ScaledObject", plan.state["namespace"], name)
        return await _recorded(ctx, ref, "HemostatScaleUp" if raise_only else "HemostatScaleUpReverted",
                               f"{where} replica counts {before[0]}-{before[1]} -> {low}-{high}")

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        async def attempt() -> None:  # a controller's status write between read and patch: 409, again
            if plan.state["mode"] == "keda":
                await scale_targets.set_keda(ctx, plan.state["scaledobject"], plan.state["after_min"],
                                             plan.state["after_max"], raise_only=False, dry_run=True)
            elif plan.state["mode"] == "hpa":
                bounds = {"minReplicas": plan.state["after_min"], "maxReplicas": plan.state["after_max"]}
                await _patch_hpa(ctx, await _read_hpa(ctx, plan.state["hpa"]), bounds, dry_run=True)
            else:
                await _patch_scale(ctx, await _scale(ctx), plan.state["after"], dry_run=True)

        await retry_conflicts(attempt)
        return Outcome(True, f"the apiserver accepts: {plan.summary} (dryRun=All, nothing changed)",
                       {"changed": False})

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        want = int(plan.state["target"])
        available = await self._wait(ctx, want)
        if available < want:
            return Outcome(False, f"{available}/{want} replicas available after {self.verify_timeout_s:g}s",
                           {"available": available})
        findings = [f for f in await ctx.reprobe(ctx.target, self.reprobe) if f.kind in STILL_BAD]
        if findings:
            return Outcome(False, f"{want} replicas available, but still: {findings[0].summary}",
                           {"available": available, "findings": [f.kind for f in findings]})
        return Outcome(True, f"{available} replicas available", {"available": available})

    async def _wait(self, ctx: ActionContext, want: int) -> int:
        ns, name = _name(ctx)
        polls = max(1, math.ceil(self.verify_timeout_s / self.poll_interval_s))
        available = 0
        for poll in range(polls + 1):
            deploy = await scale_targets.read_workload(ctx, ns, name)
            available = int((deploy.get("status") or {}).get("availableReplicas", 0))
            if available >= want or poll == polls:
                break
            await asyncio.sleep(self.poll_interval_s)
        return available


async def _recorded(ctx: ActionContext, ref: ObjectRef, reason: str, message: str) -> Outcome:
    """The outcome of a change that happened, with the Event written on the touched object."""
    event_error = await write_event(ctx, ref, reason, f"Hemostat: {message}")
    facts: JSON = {"changed": True, **({"event_error": event_error} if event_error else {})}
    return Outcome(True, message, facts)
