"""The cluster fault rules (pure): given a workload and the cluster around it (`ClusterView`),
the root causes of its trouble, each a Finding whose kind is a word of the vocabulary
(`fault.VOCABULARY`, docs/findings.md), whose subject is the object at fault (`node/worker-2`,
`service/cart`), with the class, the evidence, what to change, and whether the newest rollout put
it there (a rollback then restores the workload). Highest-ranked first; used by the `k8s-cluster`
probe and by `hemostat diagnose --snapshot`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.model import Finding, Severity, truncate
from probes.k8s_faults import admission, infra, injected, routing, runtime, scheduling, startup, volumes
from probes.k8s_faults.fault import SYMPTOMS, VOCABULARY, Fault
from probes.k8s_faults.view import ClusterView, Workload, workload_of

__all__ = ["VOCABULARY", "ClusterView", "Fault", "Workload", "faults", "findings", "workload_of"]
RULES = (
    *infra.RULES,
    *admission.RULES,
    *scheduling.RULES,
    *volumes.RULES,
    *startup.RULES,
    *runtime.RULES,
    *routing.RULES,
    *injected.RULES,
)
JSON = dict[str, Any]


def faults(w: Workload, view: ClusterView) -> list[Fault]:
    """Every fault the rules see for the workload, the best-evidenced first, one per (cause, object)."""
    seen: dict[tuple[str, str], Fault] = {}
    for rule in RULES:
        for f in rule(w, view):
            seen.setdefault((f.cause, f.obj), f)
    return sorted(seen.values(), key=lambda f: -f.rank)


def _template_part(template: JSON, path: str) -> Any:
    head, _, field = path.partition(".")
    if head == "containers":
        return [c.get(field) for c in template.get("containers") or []]
    return template.get(head)


def _change(w: Workload, fault: Fault) -> str | None:
    """How the newest rollout put the fault there (its template differs from the previous
    revision's where the fault lies), or None."""
    if not fault.template_path or len(w.replicasets) < 2:
        return None
    new, old = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {} for rs in w.replicasets[:2])
    before, after = _template_part(old, fault.template_path), _template_part(new, fault.template_path)
    if before == after:
        return None
    return truncate(f"the newest rollout changed {fault.template_path}: {before} -> {after}", 240)


def findings(w: Workload, view: ClusterView, now: datetime, probe: str = "k8s-cluster") -> list[Finding]:
    severity = (
        Severity.SEV1 if w.hurt() and w.available() == 0 else Severity.SEV2 if w.hurt() else Severity.SEV3
    )
    out = []
    for fault in faults(w, view):
        change = _change(w, fault)
        sev = severity if fault.rank >= 2 else Severity.SEV3
        if fault.fault_class == "service_routing" and fault.rank >= 3:
            sev = min(sev, Severity.SEV2)  # its pods may be Ready, but no traffic reaches them
        out.append(
            Finding(
                kind=fault.cause,
                subject=fault.obj,
                severity=sev,
                observed_at=now,
                summary=truncate(fault.summary, 300),
                probe=probe,
                evidence=tuple(truncate(e, 240) for e in (*fault.evidence, *([change] if change else [])))[
                    :6
                ],
                facts={
                    "root_cause": fault.cause,
                    "class": fault.fault_class,
                    "object": fault.obj,
                    "namespace": w.namespace,
                    "workload": w.ref,
                    "deployment": w.name,
                    "fix": fault.summary,
                    "from_change": change is not None,
                    "explains": list(SYMPTOMS) if fault.rank >= 2 else [],
                    "rank": fault.rank,
                    **fault.facts,
                },
            )
        )
    return out
