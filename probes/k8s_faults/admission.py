"""Admission faults (pure): a namespace quota spent (cpu, memory, pods, services, storage) and a
missing ServiceAccount. The evidence is the ReplicaSet controller's FailedCreate event (the
apiserver's refusal, quoted), the quota's hard vs used, and the ServiceAccounts that exist.
Services and PVCs are refused to whoever applies them (no event); then the quota at its limit
and the object the workload needs but that does not exist are the evidence.
"""

from __future__ import annotations

import re

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, matches, name, quantity

# plugin/pkg/admission/resourcequota/controller.go: "exceeded quota: %s, requested: %s, used: %s, limited: %s"
EXCEEDED = re.compile(r"exceeded quota: ([\w.-]+), requested: (\S+), used: (\S+), limited: (\S+)")
# plugin/pkg/admission/serviceaccount/admission.go: "error looking up service account %s/%s: %w"
SA_LOOKUP = re.compile(r"error looking up service account ([\w.-]+)/([\w.-]+)")


def resource_cause(resource: str) -> str | None:
    r = resource.removeprefix("requests.").removeprefix("limits.").removeprefix("count/")
    if r in ("cpu", "memory", "pods"):
        return f"quota_exceeded_{r}"
    if r.startswith("services"):
        return "quota_exceeded_services"
    if "storage" in r or r.startswith("persistentvolumeclaims"):
        return "quota_exceeded_storage"
    return None


def _pairs(text: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in text.strip(",. ").split(",") if "=" in p)


def quota_events(w: Workload, view: ClusterView) -> list[Fault]:
    out: list[Fault] = []
    for e in view.events_for(w.names(), w.namespace, ("FailedCreate",)):
        m = EXCEEDED.search(e["message"])
        if not m:
            continue
        requested, used, hard = (_pairs(m[i]) for i in (2, 3, 4))
        for resource in hard:
            cause = resource_cause(resource)
            if cause is None or any(f.cause == cause for f in out):
                continue
            out.append(
                Fault(
                    cause,
                    f"resourcequota/{m[1]}",
                    f"ResourceQuota {m[1]} refuses {w.name}'s pods: {resource} requested "
                    f"{requested.get(resource, '?')}, used {used.get(resource, '?')} of "
                    f"{hard[resource]}; raise the quota or lower the requests",
                    (
                        f"{e['reason']} on {e['kind'].lower()}/{e['name']}: {e['message']}",
                        *_quota_status(view, m[1], w.namespace),
                    ),
                    rank=3,
                    facts={"quota": m[1], "resource": resource},
                )
            )
    return out


def _quota_status(view: ClusterView, quota: str, ns: str) -> list[str]:
    q = view.get("resourcequotas", quota, ns)
    if q is None:
        return []
    status = q.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    return [
        f"resourcequota/{quota} {k}: used {used.get(k, '0')} of hard {v}" for k, v in sorted(hard.items())
    ]


def _spent(view: ClusterView, ns: str, prefixes: tuple[str, ...]) -> tuple[str, str] | None:
    """(quota, resource) of a quota in `ns` at its limit on a resource of these kinds."""
    for q in view.items("resourcequotas", ns):
        status = q.get("status") or {}
        for resource, hard in (status.get("hard") or {}).items():
            used = (status.get("used") or {}).get(resource)
            if resource.startswith(prefixes) and used is not None and quantity(used) >= quantity(hard):
                return name(q), resource
    return None


def quota_objects(w: Workload, view: ClusterView) -> list[Fault]:
    """Services and PVCs refused at apply time: the quota at its limit, the object missing."""
    out: list[Fault] = []
    if view.has("services") and not any(
        matches((s.get("spec") or {}).get("selector"), lab)
        for s in view.items("services", w.namespace)
        for lab in w.pod_labels()
    ):
        spent = _spent(view, w.namespace, ("services", "count/services"))
        if spent:
            out.append(
                Fault(
                    "quota_exceeded_services",
                    f"resourcequota/{spent[0]}",
                    f"ResourceQuota {spent[0]} is at its {spent[1]} limit, so no Service for "
                    f"{w.name} could be created; raise the quota or delete unused Services",
                    ("no Service selects the pods of " + w.ref, *_quota_status(view, spent[0], w.namespace)),
                    rank=2,
                )
            )
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in w.template.get("volumes") or []
        if v.get("persistentVolumeClaim")
    }
    said = " ".join(e["message"] for e in view.events_for({name(p) for p in w.pods}, w.namespace)) + " ".join(
        str(c.get("message") or "") for p in w.pods for c in (p.get("status") or {}).get("conditions") or []
    )
    missing = sorted(
        c
        for c in claims  # not among the claims read, or the scheduler / kubelet says it is not there
        if (view.has("persistentvolumeclaims") and view.get("persistentvolumeclaims", c, w.namespace) is None)
        or f'persistentvolumeclaim "{c}" not found' in said
    )
    if missing:
        spent = _spent(view, w.namespace, ("requests.storage", "persistentvolumeclaims")) or next(
            (
                (name(q), r)
                for q in view.items("resourcequotas", w.namespace)
                for r in (q.get("status") or {}).get("hard") or {}
                if "storage" in r
            ),
            None,
        )
        if spent:
            out.append(
                Fault(
                    "quota_exceeded_storage",
                    f"resourcequota/{spent[0]}",
                    f"ResourceQuota {spent[0]} ({spent[1]}) left no room for PersistentVolumeClaim "
                    f"{missing[0]}, which {w.name} mounts; raise the quota or shrink the claim",
                    (
                        f"persistentvolumeclaim/{missing[0]} does not exist; {w.ref} mounts it",
                        *_quota_status(view, spent[0], w.namespace),
                    ),
                    rank=2,
                )
            )
    return out


def service_account(w: Workload, view: ClusterView) -> list[Fault]:
    for e in view.events_for(w.names(), w.namespace, ("FailedCreate",)):
        m = SA_LOOKUP.search(e["message"])
        if m:
            return [_sa_fault(w, m[2], f"{e['reason']} on {e['kind'].lower()}/{e['name']}: {e['message']}")]
    sa = w.template.get("serviceAccountName") or w.template.get("serviceAccount")
    if (
        sa
        and view.has("serviceaccounts")
        and view.get("serviceaccounts", sa, w.namespace) is None
        and w.hurt()
    ):
        return [_sa_fault(w, sa, f"no serviceaccount/{sa} in namespace {w.namespace}")]
    return []


def _sa_fault(w: Workload, sa: str, evidence: str) -> Fault:
    return Fault(
        "service_account_missing",
        w.ref,
        f"{w.ref} runs as ServiceAccount {sa}, which does not exist in {w.namespace}: create it or "
        "fix spec.template.spec.serviceAccountName",
        (evidence,),
        template_path="serviceAccountName",
        rank=3,
        facts={"service_account": sa},
    )


RULES = (quota_events, quota_objects, service_account)
