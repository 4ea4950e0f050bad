"""The 40 planted faults (see cluster_cases.py): admission, scheduling, startup, runtime,
service routing, performance, infrastructure. Each comment names where Kubernetes writes the
message quoted."""

from __future__ import annotations

from typing import Any

from tests.probes.cluster_cases import NS, case
from tests.probes.cluster_plant import container, deployment, event, no_pods, pending, unavailable

JSON = dict[str, Any]
C = dict[str, list[JSON]]
# plugin/pkg/admission/resourcequota/controller.go: "exceeded quota: %s, requested: %s, used: %s, limited: %s",
# wrapped by the ReplicaSet controller's FailedCreate "Error creating: pods \"%s\" is forbidden: ..."
QUOTA = (
    'Error creating: pods "cart-7d9f-xk2p9" is forbidden: exceeded quota: ns-quota, requested: {r}, '
    "used: {u}, limited: {h}"
)


def _quota(c: C, requested: str, used: str, hard: str) -> None:
    no_pods(c)
    event(c, "ReplicaSet", "cart-7d9f", "FailedCreate", QUOTA.format(r=requested, u=used, h=hard))


@case("quota_exceeded_cpu", "resourcequota/ns-quota")
def _(c: C) -> None:
    _quota(c, "requests.cpu=250m", "requests.cpu=8", "requests.cpu=8")


@case("quota_exceeded_memory", "resourcequota/ns-quota")
def _(c: C) -> None:
    _quota(c, "requests.memory=256Mi", "requests.memory=16Gi", "requests.memory=16Gi")


@case("quota_exceeded_pods", "resourcequota/ns-quota")
def _(c: C) -> None:
    _quota(c, "pods=1", "pods=20", "pods=20")


@case("quota_exceeded_services", "resourcequota/ns-quota")
def _(c: C) -> None:  # a Service refused at apply time: no event, the quota at its limit, no Service
    c["services"] = [s for s in c["services"] if s["metadata"]["name"] != "cart"]
    c["endpointslices"] = []
    c["resourcequotas"][0]["status"]["hard"]["services"] = "1"
    c["resourcequotas"][0]["status"]["used"]["services"] = "1"


@case("quota_exceeded_storage", "resourcequota/ns-quota")
def _(c: C) -> None:  # the PVC refused at apply time; the pod waits for it
    deployment(c)["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    ]
    c["resourcequotas"][0]["status"]["used"]["requests.storage"] = "50Gi"
    # pkg/scheduler/framework/plugins/volumebinding: `persistentvolumeclaim "data" not found`
    pending(
        c,
        '0/4 nodes are available: persistentvolumeclaim "data" not found. preemption: 0/4 nodes are '
        "available: 4 Preemption is not helpful for scheduling.",
    )


@case("service_account_missing", "deployment/cart")
def _(
    c: C,
) -> None:  # plugin/pkg/admission/serviceaccount/admission.go "error looking up service account %s/%s: %w"
    no_pods(c)
    c["serviceaccounts"] = [s for s in c["serviceaccounts"] if s["metadata"]["name"] != "cart"]
    event(
        c,
        "ReplicaSet",
        "cart-7d9f",
        "FailedCreate",
        'Error creating: pods "cart-7d9f-" is forbidden: error looking '
        f'up service account {NS}/cart: serviceaccount "cart" not found',
    )


PREEMPT = " preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
CP = "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"


@case("insufficient_node_cpu", "deployment/cart")
def _(c: C) -> None:  # noderesources/fit.go "Insufficient %v"
    container(c)["resources"]["requests"]["cpu"] = "16"
    pending(c, f"0/4 nodes are available: {CP}, 3 Insufficient cpu." + PREEMPT)


@case("insufficient_node_memory", "deployment/cart")
def _(c: C) -> None:
    container(c)["resources"]["requests"]["memory"] = "64Gi"
    pending(c, f"0/4 nodes are available: {CP}, 3 Insufficient memory." + PREEMPT)


@case("node_selector_mismatch", "deployment/cart")
def _(c: C) -> None:  # nodeaffinity/node_affinity.go ErrReasonPod
    deployment(c)["spec"]["template"]["spec"]["nodeSelector"] = {"disktype": "ssd"}
    pending(
        c, f"0/4 nodes are available: {CP}, 3 node(s) didn't match Pod's node affinity/selector." + PREEMPT
    )


@case("node_affinity_mismatch", "deployment/cart")
def _(c: C) -> None:
    deployment(c)["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-9"]}
                        ]
                    }
                ]
            }
        }
    }
    pending(
        c, f"0/4 nodes are available: {CP}, 3 node(s) didn't match Pod's node affinity/selector." + PREEMPT
    )


@case("taint_not_tolerated", "node/worker-2")
def _(c: C) -> None:  # tainttoleration/taint_toleration.go "node(s) had untolerated taint {%s: %s}"
    c["nodes"][2]["spec"]["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    deployment(c)["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "worker-2"}
    pending(
        c,
        f"0/4 nodes are available: {CP}, 1 node(s) had untolerated taint {{dedicated: gpu}}, "
        "2 node(s) didn't match Pod's node affinity/selector." + PREEMPT,
    )


@case("node_cordoned", "node/worker-3")
def _(c: C) -> None:  # nodeunschedulable/node_unschedulable.go ErrReasonUnschedulable
    c["nodes"][3]["spec"]["unschedulable"] = True
    c["nodes"][3]["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    deployment(c)["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "worker-3"}
    pending(
        c,
        f"0/4 nodes are available: {CP}, 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable." + PREEMPT,
    )


@case("pod_anti_affinity_conflict", "deployment/cart")
def _(c: C) -> None:  # interpodaffinity/filtering.go ErrReasonAntiAffinityRulesNotMatch
    deployment(c)["spec"]["replicas"] = 5
    deployment(c)["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cart"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    unavailable(c, 2)
    c["pods"].append(
        {
            **c["pods"][0],
            "metadata": {**c["pods"][0]["metadata"], "name": "cart-7d9f-zzzzz"},
            "spec": {**c["pods"][0]["spec"], "nodeName": None},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "message": f"0/4 nodes are available: {CP}, 3 node(s) didn't match pod "
                        "anti-affinity rules." + PREEMPT,
                    }
                ],
            },
        }
    )
