"""Each probe's and action's `kube_rules` table is what its code really calls.

Every Kubernetes probe and action runs a full scenario (plan, dry-run, execute, verify, revert;
collect) against the fake apiserver through the official client; the requests the server saw are
turned back into RBAC terms (verb, API group, resource, object name) and compared with the
module's declared table: nothing called that is not declared, nothing declared that is not
called, and a `target` or `configured` rule only ever touches the named objects. The chart test
(tests/helm/test_chart.py) then checks the rendered Roles against the same tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes.client
import pytest

from agent.diagnosis.registry import Registry
from agent.model import FallbackSpec, FlagSpec, Proposal, TargetSpec
from agent.model.context import ActionContext, ProbeContext
from agent.model.rbac import grants_of
from tests.actions import test_rollback, test_rollback_workloads, test_scale_targets, test_scale_up
from tests.kubeapi.gitops import register_gitops_crds
from tests.kubeapi.rollouts import RolloutsController
from tests.kubeapi.server import FakeApiServer
from tests.loopback import LoopbackServer
from tests.probes.test_app_metrics import endpoint_slice

NS, APP, HPA, CONFIGMAP = "shop", "app", "app-hpa", "app-config"
NAMED = {"target": {APP, HPA}, "configured": {CONFIGMAP}}
Client = kubernetes.client.ApiClient


@dataclass(frozen=True)
class Call:
    verb: str
    group: str
    resource: str
    name: str


def as_call(method: str, raw_path: str) -> Call | None:
    """An apiserver request in RBAC terms; None for discovery and health paths."""
    url = urlsplit(raw_path)
    parts = [p for p in url.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    watching = parse_qs(url.query).get("watch") in (["true"], ["1"])
    verb = {"GET": ("get" if name else "watch" if watching else "list"), "POST": "create",
            "PATCH": "patch", "PUT": "update", "DELETE": "delete" if name else "deletecollection"}[method]
    return Call(verb, group, resource, name)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def proposal(action: str, subject: str, **params: Any) -> Proposal:
    return Proposal(id="p", target="shop-app", action=action, subject=subject, params=params, path=(),
                    reason="rbac scenario", created_at=test_rollback.proposal().created_at)


def full_cycle(action: Any, prop: Proposal, ctx: ActionContext) -> None:
    plan = run(action.plan(prop, ctx))
    run(action.dry_run(plan, ctx))
    run(action.execute(plan, ctx))
    run(action.verify(plan, ctx))
    run(action.revert(plan, ctx))


def seed_namespace_and_configmap(api: FakeApiServer, data: dict[str, str]) -> None:
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": NS},
              "data": data})


def rollback(api: FakeApiServer, client: Client, action: Any) -> None:
    test_rollback.setup_cluster(api, client, revisions=2)
    api.requests.clear()  # the setup's own patch is not the action's
    action.poll_interval_s, action.verify_timeout_s = 0.01, 0.05
    full_cycle(action, proposal("rollback", APP), test_rollback.ctx_for(client))
    for kind in OTHER_KINDS:
        target = seed_workload(api, client, kind)
        full_cycle(action, proposal("rollback", APP), ActionContext(target=target, kube=lambda: client))
        if kind == "Rollout":  # and once finished: undone, not aborted
            full_cycle(action, proposal("rollback", APP, rollout="undo"),
                       ActionContext(target=target, kube=lambda: client))
    for owner in GITOPS_OWNERS:  # the GitOps strategies: argocd, and live with sync suspended
        mark_owned(api, owner)
        rule = {"rollback": "argocd"} if owner == "Application" else {"rollback": "live", "live_allowed": True}
        limits = {f"gitops_{k}": v for k, v in {**rule, "may_suspend_sync": True, "sync_timeout_s": 0.02}.items()}
        ctx = ActionContext(target=test_rollback.ctx_for(client).target, kube=lambda: client, limits=limits)
        full_cycle(action, proposal("rollback", APP), ctx)


GITOPS_OWNERS = ("Application", "Kustomization", "HelmRelease")
OTHER_KINDS = ("StatefulSet", "DaemonSet", "Rollout")


def seed_workload(api: FakeApiServer, client: Client, kind: str) -> TargetSpec:
    """The target as a StatefulSet, DaemonSet or Argo Rollout named like the Deployment, with two
    revisions (the Rollout's canary paused, so rollback aborts it)."""
    register_gitops_crds(api)
    spec = {"canary": {"steps": [{"pause": {}}]}} if kind == "Rollout" else None
    body = test_rollback_workloads.workload(kind, "shop/app:1", **({"strategy": spec} if spec else {}))
    body["metadata"] = {"name": APP, "namespace": NS}
    api.seed(body)
    controller = RolloutsController(api)
    controller.reconcile()
    group, plural = test_rollback_workloads.GROUPS[kind]
    obj = api.get_object(group, plural, NS, APP)
    assert obj is not None
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "shop/app:2"
    api.apply(obj)
    controller.reconcile()
    return TargetSpec(name="shop-app", namespace=NS, deployment=APP, kind=kind)  # type: ignore[arg-type]


def mark_owned(api: FakeApiServer, kind: str, namespace: str = NS,
               what: tuple[str, str, str] = ("apps/v1", "deployments", APP)) -> None:
    """The target Deployment (or `what`) as Argo CD or Flux leaves it, and the owner object,
    auto-syncing. Seeded straight into the store: the scenario's requests stay the code's own."""
    register_gitops_crds(api)
    for ns in ("argocd", "flux-system"):
        api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    deploy = api.get_object(what[0], what[1], namespace, what[2])
    assert deploy is not None
    meta = deploy["metadata"]
    meta["labels"], meta["annotations"] = {"app": "web"}, {"deployment.kubernetes.io/revision": "3"}
    history = [{"id": 0, "revision": "a" * 40}, {"id": 1, "revision": "b" * 40}]
    if kind == "Application":
        meta["annotations"]["argocd.argoproj.io/tracking-id"] = f"{APP}:apps/Deployment:{NS}/{APP}"
        owner = {"apiVersion": "argoproj.io/v1alpha1", "metadata": {"name": APP, "namespace": "argocd"},
                 "spec": {"source": {"repoURL": "https://git.example/d.git"},
                          "syncPolicy": {"automated": {"selfHeal": True}}},
                 "status": {"sync": {"revision": "b" * 40}, "history": history}}
    else:
        prefix = "kustomize" if kind == "Kustomization" else "helm"
        meta["labels"].update({f"{prefix}.toolkit.fluxcd.io/name": "apps",
                               f"{prefix}.toolkit.fluxcd.io/namespace": "flux-system"})
        version = "v1" if kind == "Kustomization" else "v2"
        owner = {"apiVersion": f"{prefix}.toolkit.fluxcd.io/{version}",
                 "metadata": {"name": "apps", "namespace": "flux-system"},
                 "spec": {"interval": "5m", "driftDetection": {"mode": "enabled"}}}
    api.seed(deploy)
    api.seed({"kind": kind, **owner})


def scale_up(api: FakeApiServer, client: Client, action: Any) -> None:
    test_scale_up.setup_cluster(api)
    action.poll_interval_s, action.verify_timeout_s = 0.01, 0.05
    full_cycle(action, proposal("scale-up", APP, replicas=4), test_scale_up.ctx_for(client))
    test_scale_up.seed_hpa(api)  # the other path: raise the HPA's minReplicas
    full_cycle(action, proposal("scale-up", APP, replicas=6), test_scale_up.ctx_for(client))
    gitops = [(f"gitops-{i}", "Deployment") for i in range(len(GITOPS_OWNERS))]
    for ns, kind in (("keda", "Deployment"), ("sts", "StatefulSet"), *gitops):
        other_namespace(api, ns, kind)
        target = TargetSpec(name="shop-app", namespace=ns, deployment=APP, kind=kind)  # type: ignore[arg-type]
        full_cycle(action, proposal("scale-up", APP, replicas=8), ActionContext(target=target, kube=lambda: client))


def other_namespace(api: FakeApiServer, ns: str, kind: str) -> None:
    """A KEDA-scaled Deployment, a StatefulSet, or a Deployment Argo CD or Flux self-heals, in `ns`."""
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    body = test_rollback_workloads.workload(kind, "shop/app:1")
    body["metadata"] = {"name": APP, "namespace": ns}
    api.seed(body)
    if ns == "keda":
        test_scale_targets.seed_keda(api, ns)
    if ns.startswith("gitops-"):
        mark_owned(api, GITOPS_OWNERS[int(ns.rsplit("-", 1)[1])], ns)


def feature_flag_off(api: FakeApiServer, client: Client, action: Any) -> None:
    seed_namespace_and_configmap(api, {"new_checkout": "true"})
    flag = FlagSpec(name="new_checkout", backend="configmap", configmap=CONFIGMAP)
    ctx = ActionContext(target=TargetSpec(name="shop-app", namespace=NS, deployment=APP, flags=[flag]),
                        kube=lambda: client)
    full_cycle(action, proposal("feature-flag-off", "new_checkout"), ctx)
    for owner in GITOPS_OWNERS:  # a flag ConfigMap that Argo CD or Flux puts back
        mark_owned(api, owner, what=("v1", "configmaps", CONFIGMAP))
        full_cycle(action, proposal("feature-flag-off", "new_checkout"), ctx)


def failover(api: FakeApiServer, client: Client, action: Any) -> None:
    seed_namespace_and_configmap(api, {"payments_url": "https://a.example"})
    fallback = FallbackSpec(backend="configmap", configmap=CONFIGMAP, key="payments_url",
                            primary="https://a.example", secondary="https://b.example")
    target = TargetSpec(name="shop-app", namespace=NS, deployment=APP, dependencies=[
        {"name": "payments", "url": "https://a.example/health", "fallback": fallback}])
    full_cycle(action, proposal("failover", "payments"), ActionContext(target=target, kube=lambda: client))
    for owner in GITOPS_OWNERS:  # an endpoint ConfigMap that Argo CD or Flux puts back
        mark_owned(api, owner, what=("v1", "configmaps", CONFIGMAP))
        full_cycle(action, proposal("failover", "payments"), ActionContext(target=target, kube=lambda: client))


def probe(api: FakeApiServer, client: Client, plugin: Any) -> None:
    test_scale_up.setup_cluster(api)
    test_scale_up.seed_hpa(api)
    api.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-1", "namespace": NS,
                                                              "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]},
              "status": {"phase": "Running", "containerStatuses": [
                  {"name": "app", "restartCount": 1, "ready": True, "state": {"running": {}}}]}})
    api.set_pod_log(NS, "app-1", "app", "ERROR boom\n")
    target = TargetSpec(name="shop-app", namespace=NS, deployment=APP)
    run(plugin.collect(target, ProbeContext(kube=lambda: client)))
    for kind in OTHER_KINDS:  # the target as another kind of workload
        run(plugin.collect(seed_workload(api, client, kind), ProbeContext(kube=lambda: client)))
    if plugin.name == "k8s-workload":  # who owns it: each GitOps controller's object in turn
        for owner in GITOPS_OWNERS:
            mark_owned(api, owner)
            run(plugin.collect(target, ProbeContext(kube=lambda: client)))


def metrics_per_pod(api: FakeApiServer, client: Client, plugin: Any) -> None:
    pod = LoopbackServer().start()
    try:
        pod.route("/metrics", body="http_requests_total 10\nhttp_requests_errors_total 1\n")
        api.seed(endpoint_slice("web", "app-1", int(pod.url.rsplit(":", 1)[1]), ns=NS))
        target = TargetSpec.model_validate({"name": "shop-app", "namespace": NS, "metrics": {
            "service": "web", "scrape_interval_s": 0.01}})
        run(plugin.collect(target, ProbeContext(kube=lambda: client)))
    finally:
        pod.stop()


Scenario = Callable[[FakeApiServer, Client, Any], None]
ACTIONS: dict[str, Scenario] = {"rollback": rollback, "scale-up": scale_up,
                                "feature-flag-off": feature_flag_off, "failover": failover}
PROBES: dict[str, Scenario] = {"k8s-workload": probe, "k8s-logs": probe, "app-metrics": metrics_per_pod,
                               "k8s-cluster": probe}
REGISTRY = Registry.discover()


def plugins() -> list[tuple[str, Any, Scenario]]:
    return ([(name, REGISTRY.action(name), scenario) for name, scenario in ACTIONS.items()]
            + [(name, REGISTRY.probe(name), scenario) for name, scenario in PROBES.items()])


def test_every_plugin_with_kubernetes_rules_has_a_scenario_here() -> None:
    declared = {name for table in (REGISTRY.actions, REGISTRY.probes)
                for name, reg in table.items() if getattr(reg.plugin, "kube_rules", ())}
    assert declared == set(ACTIONS) | set(PROBES)


@pytest.mark.parametrize(("name", "plugin", "scenario"), plugins(), ids=[p[0] for p in plugins()])
def test_declared_kube_rules_are_exactly_what_the_code_calls(
        kube_api: FakeApiServer, kube_client: Client, name: str, plugin: Any, scenario: Scenario) -> None:
    scenario(kube_api, kube_client, plugin)
    calls = {c for c in (as_call(m, p) for m, p in kube_api.requests) if c is not None}
    calls = {c for c in calls if (c.group, c.resource) != ("", "namespaces")}  # the test's own seeding
    declared = {(g, r, v): scope for g, r, v, scope in grants_of(plugin.kube_rules)}
    called = {(c.group, c.resource, c.verb) for c in calls}
    assert called - declared.keys() == set(), f"{name} calls what its kube_rules do not declare"
    assert declared.keys() - called == set(), f"{name} declares rights it never uses"
    for c in calls:
        scope = declared[(c.group, c.resource, c.verb)]
        if scope in NAMED:
            assert c.name in NAMED[scope], f"{name}: {c} is outside its {scope} scope"
