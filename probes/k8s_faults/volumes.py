"""PersistentVolumeClaim binding faults (pure): a claim the workload mounts stays Pending because
its StorageClass does not exist or no PersistentVolume fits it — the one it names is bound to
another claim, or every candidate differs in access modes, capacity or the claim's selector.
Each claim is compared with every PersistentVolume; the closest candidate's first difference is
the root cause. Events quoted where present (pkg/controller/volume/persistentvolume/
pv_controller.go: FailedBinding "no persistent volumes available for this claim and no storage
class is set", "volume %q already bound to a different claim."; ProvisioningFailed
`storageclass.storage.k8s.io "x" not found`).
"""

from __future__ import annotations

import re
from typing import Any

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, labels, matches, name, quantity

JSON = dict[str, Any]


def claims(w: Workload) -> list[str]:
    out = [
        v["persistentVolumeClaim"]["claimName"]
        for v in w.template.get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]
    for tmpl in (w.obj.get("spec") or {}).get("volumeClaimTemplates") or []:
        out += [f"{name(tmpl)}-{w.name}-{i}" for i in range(max(1, w.desired()))]
    return out


def _class_of(pvc: JSON, view: ClusterView) -> str:
    sc = (pvc.get("spec") or {}).get("storageClassName")
    if sc is not None:
        return str(sc)
    default = next(
        (
            name(s)
            for s in view.items("storageclasses")
            if ((s.get("metadata") or {}).get("annotations") or {}).get(
                "storageclass.kubernetes.io/is-default-class"
            )
            == "true"
        ),
        "",
    )
    return default


def _differences(pvc: JSON, pv: JSON, view: ClusterView) -> list[tuple[str, str]]:
    spec, pv_spec = pvc.get("spec") or {}, pv.get("spec") or {}
    out = []
    claim_ref = pv_spec.get("claimRef") or {}
    if claim_ref and (claim_ref.get("name"), claim_ref.get("namespace")) != (
        name(pvc),
        (pvc.get("metadata") or {}).get("namespace"),
    ):
        out.append(
            (
                "pv_already_bound",
                f"persistentvolume/{name(pv)} is bound to "
                f"{claim_ref.get('namespace')}/{claim_ref.get('name')}",
            )
        )
    want_sc, pv_sc = _class_of(pvc, view), str(pv_spec.get("storageClassName") or "")
    if want_sc != pv_sc:
        out.append(
            (
                "pvc_storage_class_mismatch",
                f"claim wants storageClassName {want_sc!r}, persistentvolume/{name(pv)} has {pv_sc!r}",
            )
        )
    want_modes = set(spec.get("accessModes") or [])
    if not want_modes <= set(pv_spec.get("accessModes") or []):
        out.append(
            (
                "pvc_access_mode_mismatch",
                f"claim wants {sorted(want_modes)}, persistentvolume/{name(pv)} "
                f"offers {pv_spec.get('accessModes')}",
            )
        )
    want = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    have = (pv_spec.get("capacity") or {}).get("storage")
    if want and quantity(want) > quantity(have):
        out.append(
            ("pvc_capacity_mismatch", f"claim requests {want}, persistentvolume/{name(pv)} holds {have}")
        )
    if spec.get("selector") and not matches(spec["selector"], labels(pv)):
        out.append(
            (
                "pvc_selector_mismatch",
                f"claim selects {spec['selector']}, persistentvolume/{name(pv)} is labelled {labels(pv)}",
            )
        )
    return out


FIX = {
    "pv_already_bound": "point it at a free PersistentVolume or release the bound one",
    "pvc_storage_class_mismatch": "fix spec.storageClassName or create the StorageClass",
    "pvc_access_mode_mismatch": "fix spec.accessModes to what a PersistentVolume offers",
    "pvc_capacity_mismatch": "request no more than a PersistentVolume holds",
    "pvc_selector_mismatch": "fix spec.selector to a PersistentVolume's labels",
}


def _claim_fault(pvc: JSON, w: Workload, view: ClusterView) -> Fault | None:
    events = [
        f"{e['reason']}: {e['message']}"
        for e in view.events_for({name(pvc)}, w.namespace)
        if e["type"] != "Normal"
    ]
    sc = _class_of(pvc, view)
    obj = f"persistentvolumeclaim/{name(pvc)}"
    named = (pvc.get("spec") or {}).get("volumeName")
    pvs = view.items("persistentvolumes")
    if named:
        pvs = [pv for pv in pvs if name(pv) == named] or pvs
    provisioned = (
        sc
        and (cls := view.get("storageclasses", sc)) is not None
        and cls.get("provisioner") != "kubernetes.io/no-provisioner"
    )
    if (
        sc
        and view.has("storageclasses")
        and view.get("storageclasses", sc) is None
        and not any(str((pv.get("spec") or {}).get("storageClassName") or "") == sc for pv in pvs)
    ):
        return Fault(
            "pvc_storage_class_mismatch",
            obj,
            f"PersistentVolumeClaim {name(pvc)} asks for StorageClass "
            f"{sc!r}, which does not exist: {FIX['pvc_storage_class_mismatch']}",
            (*events, "storageclasses: " + ", ".join(name(s) for s in view.items("storageclasses"))),
            rank=3,
        )
    if provisioned and not named:
        return None  # a provisioner will make one; nothing to compare
    ranked = sorted(((_differences(pvc, pv, view), name(pv)) for pv in pvs), key=lambda r: (len(r[0]), r[1]))
    if not ranked or not ranked[0][0]:
        return None
    diffs, _pv = ranked[0]
    cause, why = diffs[0]
    return Fault(
        cause,
        obj,
        f"PersistentVolumeClaim {name(pvc)} stays Pending: {why}; {FIX[cause]}",
        (*events, *(d for _, d in diffs)),
        rank=3,
    )


BOUND_ELSEWHERE = re.compile(r'volume "([^"]+)" already bound to a different claim')
NO_CLASS = re.compile(r'storageclass\.storage\.k8s\.io "([^"]+)" not found')


def _from_events(claim: str, w: Workload, view: ClusterView) -> Fault | None:
    """Claims not read (a cluster-info dump holds none): what the PV controller said of them."""
    for e in view.events_for({claim}, w.namespace):
        obj = f"persistentvolumeclaim/{claim}"
        if m := BOUND_ELSEWHERE.search(e["message"]):
            return Fault(
                "pv_already_bound",
                obj,
                f"PersistentVolumeClaim {claim} names persistentvolume/{m[1]}, "
                f"which is bound to another claim: {FIX['pv_already_bound']}",
                (f"{e['reason']}: {e['message']}",),
                rank=3,
            )
        if m := NO_CLASS.search(e["message"]):
            return Fault(
                "pvc_storage_class_mismatch",
                obj,
                f"PersistentVolumeClaim {claim} asks for StorageClass "
                f"{m[1]!r}, which does not exist: {FIX['pvc_storage_class_mismatch']}",
                (f"{e['reason']}: {e['message']}",),
                rank=3,
            )
    return None


def volumes(w: Workload, view: ClusterView) -> list[Fault]:
    out = []
    for claim in claims(w):
        if not view.has("persistentvolumeclaims"):
            if (fault := _from_events(claim, w, view)) is not None:
                out.append(fault)
            continue
        pvc = view.get("persistentvolumeclaims", claim, w.namespace)
        if pvc is None or (pvc.get("status") or {}).get("phase") == "Bound":
            continue
        fault = _claim_fault(pvc, w, view)
        if fault:
            out.append(fault)
    return out[:1]


RULES = (volumes,)
