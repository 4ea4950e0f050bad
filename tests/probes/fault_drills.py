"""The drill of each planted fault (drills/fault-*.yaml): the k8s-cluster observation of the
namespace with the fault in it, and what the diagnosis must conclude — the root cause and the
object at fault heading it, the cluster-fault branch, an investigate first. Written by
scripts/record_fault_drills.py; tests/agent/test_fault_drills.py holds the files to this."""

from __future__ import annotations

from typing import Any

from probes.k8s_faults import VOCABULARY
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, NS, healthy

STARTED = "2026-12-08T00:30:00+00:00"


def scenario(cause: str) -> dict[str, Any]:
    obj, plant = CASES[cause]
    lists = healthy()
    plant(lists)
    workload = lists.pop("deployments")[0]
    return {
        "name": f"fault ({VOCABULARY[cause]}): {cause.replace('_', ' ')} at {obj}",
        "target": {"name": "cart", "namespace": NS, "deployment": "cart", "probes": ["k8s-cluster"]},
        "started_at": STARTED,
        "observations": [{"probe": "k8s-cluster", "target": "cart", "collected_at": STARTED,
                          "data": {"workload": workload, "cluster": lists, "notes": []}}],
        "expect": {"root_cause": f"{cause} {obj}", "branches": ["cluster-fault"], "first": "investigate",
                   "not_actions": ["rollback", "scale-up"]},
    }


def path_name(cause: str) -> str:
    return f"fault-{cause.replace('_', '-')}.yaml"
