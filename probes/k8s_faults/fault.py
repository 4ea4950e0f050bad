"""A fault the rules found: the root cause (a word of the vocabulary in docs/findings.md), its
class, the object at fault (`node/worker-2`, `service/cart`), what to change, the evidence, and
where in the pod template it lies (so a rollback can be judged: undoing a change that put it
there restores the workload). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# root cause -> class: the stable vocabulary (docs/findings.md)
VOCABULARY: dict[str, str] = {
    **dict.fromkeys(
        (
            "quota_exceeded_cpu",
            "quota_exceeded_memory",
            "quota_exceeded_pods",
            "quota_exceeded_services",
            "quota_exceeded_storage",
            "service_account_missing",
        ),
        "admission",
    ),
    **dict.fromkeys(
        (
            "insufficient_node_cpu",
            "insufficient_node_memory",
            "node_selector_mismatch",
            "node_affinity_mismatch",
            "taint_not_tolerated",
            "node_cordoned",
            "pod_anti_affinity_conflict",
            "pv_already_bound",
            "pvc_access_mode_mismatch",
            "pvc_capacity_mismatch",
            "pvc_selector_mismatch",
            "pvc_storage_class_mismatch",
        ),
        "scheduling",
    ),
    **dict.fromkeys(
        (
            "image_not_found",
            "image_registry_unresolvable",
            "image_pull_secret_missing",
            "volume_mount_permission_denied",
        ),
        "startup",
    ),
    **dict.fromkeys(
        (
            "container_oom_killed",
            "liveness_probe_wrong_port",
            "liveness_probe_wrong_protocol",
            "liveness_probe_timing",
            "readiness_probe_wrong_port",
            "readiness_probe_wrong_protocol",
        ),
        "runtime",
    ),
    **dict.fromkeys(
        (
            "service_selector_mismatch",
            "service_port_mismatch",
            "service_protocol_mismatch",
            "dependency_address_invalid",
        ),
        "service_routing",
    ),
    **dict.fromkeys(("pod_cpu_overload", "pod_network_delay"), "performance"),
    **dict.fromkeys(
        (
            "kubelet_down",
            "containerd_down",
            "kube_proxy_down",
            "kube_scheduler_down",
            "node_network_delay",
            "node_packet_loss",
        ),
        "infrastructure",
    ),
}
# the symptoms of its workload a root cause explains (no action on them on their own)
SYMPTOMS = (
    "replicas_unavailable",
    "rollout_stuck",
    "pods_pending",
    "crash_loop",
    "oom_killed",
    "cpu_saturated",
    "error_spike",
    "latency_high",
)


@dataclass(frozen=True)
class Fault:
    cause: str
    obj: str  # kind/name, lower-case kind, as kubectl names it
    summary: str  # what is wrong and what to change, in one sentence
    evidence: tuple[str, ...]
    template_path: str = ""  # where in the pod template the fault lies ("" = outside it)
    rank: int = 0  # among faults of one workload, higher heads (direct evidence beats inference)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def fault_class(self) -> str:
        return VOCABULARY[self.cause]
