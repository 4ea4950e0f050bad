"""scale-up, feature-flag-off and failover against the real control plane: the scale subresource
with pods the real scheduler places and kwok makes Ready, an autoscaling/v2 HPA whose real
controller scales the Deployment once Hemostat raises minReplicas, and ConfigMap writes with
their verify, dry run and revert."""

from __future__ import annotations

import kubernetes.client
import pytest

from actions.failover import FailoverAction
from actions.feature_flag import FeatureFlagOffAction
from actions.scale_up import ScaleUpAction
from agent.model import DependencySpec, FallbackSpec, FlagSpec, PermanentError
from tests.cluster.fixtures import BUILD_AND_START_TIMEOUT_S
from tests.cluster.kube import (
    action_ctx,
    create,
    eventually,
    proposal,
    read,
    run,
    target,
    wait_rolled_out,
    workload,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(BUILD_AND_START_TIMEOUT_S)]
Client = kubernetes.client.ApiClient
SCALE = ScaleUpAction(poll_interval_s=0.25, verify_timeout_s=60)
PRIMARY, SECONDARY = "https://api.stripe.com", "https://api.adyen.com"


def replicas(client: Client, ns: str) -> tuple[int, int]:
    deploy = read(client, "Deployment", ns, "web")
    return deploy["spec"]["replicas"], (deploy.get("status") or {}).get("availableReplicas", 0)


def hemostat_events(client: Client, ns: str, reason: str) -> list[kubernetes.client.CoreV1Event]:
    return list(kubernetes.client.CoreV1Api(client).list_namespaced_event(
        ns, field_selector=f"reason={reason}").items)


def test_scale_up_capped_by_the_limits_verified_by_ready_pods_and_reverted(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=2))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    ctx = action_ctx(target(ns, "web"), admin_client, limits={"max_replicas": 5})
    plan = run(SCALE.plan(proposal("scale-up", "web", factor=3), ctx))
    assert (plan.state["mode"], plan.state["before"], plan.state["after"]) == ("replicas", 2, 5)
    assert plan.state["capped"] == ["max_replicas 5"]

    dry = run(SCALE.dry_run(plan, ctx))
    assert dry.ok and replicas(admin_client, ns) == (2, 2)
    assert run(SCALE.execute(plan, ctx)).facts["changed"]
    verified = run(SCALE.verify(plan, ctx))
    assert verified.ok and verified.facts["available"] == 5, verified.detail
    pods = kubernetes.client.CoreV1Api(admin_client).list_namespaced_pod(ns, label_selector="app=web").items
    assert len(pods) == 5 and all(p.spec.node_name for p in pods)  # placed by the real scheduler
    assert not run(SCALE.execute(plan, ctx)).facts["changed"]
    assert len(hemostat_events(admin_client, ns, "HemostatScaleUp")) == 1

    assert run(SCALE.revert(plan, ctx)).facts["changed"]
    eventually(lambda: replicas(admin_client, ns) == (2, 2), 60, "scaled back to 2")


def test_verify_fails_when_new_replicas_cannot_be_scheduled(admin_client: Client, ns: str) -> None:
    obj = workload("Deployment", "web", "shop/web:1.0", replicas=1)
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "3"
    create(admin_client, ns, obj)  # 3 of each node's 4 CPUs: one pod per node at most
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    ctx = action_ctx(target(ns, "web"), admin_client)
    plan = run(SCALE.plan(proposal("scale-up", "web", replicas=5), ctx))
    run(SCALE.execute(plan, ctx))
    verified = run(ScaleUpAction(poll_interval_s=0.25, verify_timeout_s=5).verify(plan, ctx))
    assert not verified.ok and verified.detail.startswith("3/5 replicas available"), verified.detail


def hpa(ns: str, low: int, high: int) -> dict[str, object]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}


def test_with_an_hpa_min_replicas_is_raised_and_the_real_hpa_controller_scales(
        admin_client: Client, ns: str) -> None:
    create(admin_client, ns, workload("Deployment", "web", "shop/web:1.0", replicas=2))
    autoscaling = kubernetes.client.AutoscalingV2Api(admin_client)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, hpa(ns, 2, 3))
    wait_rolled_out(admin_client, "Deployment", ns, "web")
    ctx = action_ctx(target(ns, "web"), admin_client)
    plan = run(SCALE.plan(proposal("scale-up", "web", factor=2), ctx))
    assert plan.state["mode"] == "hpa" and plan.touches == (f"hpa {ns}/web",)
    assert (plan.state["after_min"], plan.state["after_max"]) == (4, 4)  # max raised with it

    assert run(SCALE.execute(plan, ctx)).facts["changed"]
    live = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert (live.spec.min_replicas, live.spec.max_replicas) == (4, 4)
    assert read(admin_client, "Deployment", ns, "web")["spec"]["replicas"] == 2  # not scaled by Hemostat
    verified = run(SCALE.verify(plan, ctx))  # the HPA controller raises it (below minReplicas)
    assert verified.ok, verified.detail
    assert replicas(admin_client, ns) == (4, 4)
    assert hemostat_events(admin_client, ns, "HemostatScaleUp")[0].involved_object.kind == "HorizontalPodAutoscaler"

    assert run(SCALE.revert(plan, ctx)).facts["changed"]
    live = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert (live.spec.min_replicas, live.spec.max_replicas) == (2, 3)
    # above the restored maximum: the real HPA controller brings it back to 3
    eventually(lambda: replicas(admin_client, ns)[0] == 3, 60, "the HPA controller to cap at maxReplicas")


def flags_configmap(client: Client, ns: str) -> None:
    create(client, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"},
                        "data": {"new-checkout": "true", "other": "true"}})


def test_feature_flag_off_in_a_configmap_verified_and_reverted(admin_client: Client, ns: str) -> None:
    flags_configmap(admin_client, ns)
    action = FeatureFlagOffAction()
    spec = target(ns, "web", flags=[FlagSpec(name="new-checkout", backend="configmap", configmap="flags")])
    ctx = action_ctx(spec, admin_client)
    plan = run(action.plan(proposal("feature-flag-off", "new-checkout"), ctx))
    assert [(c.before, c.after) for c in plan.changes] == [(True, False)]
    assert run(action.dry_run(plan, ctx)).ok
    assert read(admin_client, "ConfigMap", ns, "flags")["data"]["new-checkout"] == "true"

    assert run(action.execute(plan, ctx)).facts["changed"]
    assert read(admin_client, "ConfigMap", ns, "flags")["data"] == {"new-checkout": "false", "other": "true"}
    assert run(action.verify(plan, ctx)).ok
    assert not run(action.execute(plan, ctx)).facts["changed"]
    assert run(action.revert(plan, ctx)).ok
    assert read(admin_client, "ConfigMap", ns, "flags")["data"] == {"new-checkout": "true", "other": "true"}


def failover_ctx(client: Client, ns: str, configmap: str = "endpoints") -> object:
    fallback = FallbackSpec(backend="configmap", configmap=configmap, key="payments.endpoint",
                            primary=PRIMARY, secondary=SECONDARY)
    dep = DependencySpec(name="stripe", url="http://127.0.0.1:9/health", fallback=fallback)
    return action_ctx(target(ns, "web", dependencies=[dep]), client)


def test_failover_switches_the_configmap_and_reverts(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "endpoints"},
                              "data": {"payments.endpoint": PRIMARY, "other": "keep"}})
    action, ctx = FailoverAction(), failover_ctx(admin_client, ns)
    plan = run(action.plan(proposal("failover", "stripe"), ctx))
    assert run(action.dry_run(plan, ctx)).ok
    assert read(admin_client, "ConfigMap", ns, "endpoints")["data"]["payments.endpoint"] == PRIMARY
    assert run(action.execute(plan, ctx)).facts["changed"]
    assert read(admin_client, "ConfigMap", ns, "endpoints")["data"] == {"payments.endpoint": SECONDARY,
                                                                         "other": "keep"}
    assert run(action.verify(plan, ctx)).ok
    assert not run(action.execute(plan, ctx)).facts["changed"]
    run(action.revert(plan, ctx))
    assert read(admin_client, "ConfigMap", ns, "endpoints")["data"]["payments.endpoint"] == PRIMARY


def test_failover_refuses_a_value_someone_else_set_and_a_missing_configmap(admin_client: Client, ns: str) -> None:
    create(admin_client, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "endpoints"},
                              "data": {"payments.endpoint": "https://elsewhere.example"}})
    action = FailoverAction()
    with pytest.raises(PermanentError) as refused:
        run(action.plan(proposal("failover", "stripe"), failover_ctx(admin_client, ns)))
    assert "elsewhere.example" in str(refused.value)
    with pytest.raises(PermanentError) as missing:
        run(action.plan(proposal("failover", "stripe"), failover_ctx(admin_client, ns, "nope")))
    assert str(missing.value) == (f"configmap {ns}/nope key payments.endpoint: "
                                  "read_namespaced_config_map answered HTTP 404 Not Found")
