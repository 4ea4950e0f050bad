"""Probe side of GitOps ownership: who manages the workload, read for the diagnosis.

`owner` reads the Application, Kustomization or HelmRelease the workload's labels and
annotations name (agent/model/gitops.py) and describes it; `finding` turns that into the
`gitops_managed` note the diagnosis shows ("checkout is managed by Argo CD app argocd/checkout,
auto-sync with self-heal"), so whoever approves a mitigation knows a live edit would be undone.
Used by `k8s-workload`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.model import Finding, HemostatError, Severity, TargetSpec
from agent.model.context import ProbeContext
from agent.model.gitops import describe, owner_of, summary
from probes._kube import api, read_json

JSON = dict[str, Any]


async def owner(ctx: ProbeContext, obj: JSON, kind: str = "Deployment") -> JSON | None:
    """The GitOps owner's facts, or None when nothing manages `obj`."""
    found = owner_of(obj)
    if found is None:
        return None
    group, version, plural = found.api
    custom = api(ctx, "CustomObjectsApi")
    try:
        controller = await read_json(ctx, ("get", plural, found.namespace, found.name),
                                     custom.get_namespaced_custom_object, group, version,
                                     found.namespace, plural, found.name)
    except HemostatError as e:
        if e.code == "kube_not_found" and found.confirmed_by_label_only:
            return None  # a Helm chart's instance label, not Argo CD's
        return {**describe(found, None, kind), "error": str(e)}
    return describe(found, controller, kind)


def finding(facts: JSON | None, target: TargetSpec, now: datetime, probe: str) -> list[Finding]:
    if not facts:
        return []
    subject = target.deployment or target.name
    evidence = [f"marked by {facts['via']}"]
    if facts.get("found"):
        evidence.append(f"synced revision {str(facts.get('revision') or '?')[:12]}, "
                        f"{facts.get('sync_status')}, health {facts.get('health')}")
        if facts.get("ignores_replicas"):
            evidence.append("ignoreDifferences covers /spec/replicas: scaling holds")
    return [Finding(kind="gitops_managed", subject=subject, severity=Severity.SEV4, observed_at=now,
                    summary=summary(subject, facts), probe=probe, evidence=tuple(evidence),
                    facts=facts)]
