"""Startup faults (pure): the image cannot be pulled — it does not exist, its registry's name
does not resolve, or the pull secret is missing — or the container cannot write where a volume
is mounted. Evidence: the container's waiting reason and message, the kubelet's events, the
termination message and the pod's logs.

Kubelet words (kubernetes/kubernetes): pkg/kubelet/images/image_manager.go event Failed
"Failed to pull image %q: %v" and BackOff "Back-off pulling image %q"; reasons ErrImagePull,
ImagePullBackOff, InvalidImageName (pkg/kubelet/images/types.go); pkg/kubelet/kuberuntime/
kuberuntime_manager.go FailedToRetrieveImagePullSecret "Unable to retrieve some image pull
secrets (%s); attempting to pull the image may not succeed.". The runtime's own text follows
("failed to resolve reference ...: not found", "dial tcp: lookup reg.invalid: no such host",
"401 Unauthorized", "pull access denied").
"""

from __future__ import annotations

import re

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, name

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
DNS = re.compile(
    r"no such host|server misbehaving|lookup \S+ on \S+|Temporary failure in name resolution", re.I
)
AUTH = re.compile(
    r"401 Unauthorized|403 Forbidden|authorization failed|no basic auth credentials|"
    r"unauthorized: authentication required|pull access denied|"
    r"Unable to retrieve some image pull secrets",
    re.I,
)
MISSING = re.compile(
    r"not found|manifest unknown|InvalidImageName|invalid reference format|"
    r"repository does not exist|name unknown",
    re.I,
)
DENIED = re.compile(r"permission denied|read-only file system|operation not permitted", re.I)


def _pull_texts(w: Workload, view: ClusterView) -> list[str]:
    texts = [
        f"{st.get('name')}: {(st.get('state') or {}).get('waiting', {}).get('reason')}: "
        f"{(st.get('state') or {}).get('waiting', {}).get('message', '')}"
        for p in w.pods
        for st in (p.get("status") or {}).get("containerStatuses") or []
        if ((st.get("state") or {}).get("waiting") or {}).get("reason") in PULL_REASONS
    ]
    if not texts:
        return []
    pods = {name(p) for p in w.pods}
    texts += [
        f"{e['reason']}: {e['message']}"
        for e in view.events_for(pods, w.namespace)
        if e["reason"] in ("Failed", "FailedToRetrieveImagePullSecret") or "pull" in e["message"].lower()
    ]
    return texts


def image_pull(w: Workload, view: ClusterView) -> list[Fault]:
    texts = _pull_texts(w, view)
    if not texts:
        return []
    blob = "\n".join(texts)
    image = str(next((c.get("image") for c in w.containers()), "?"))
    secrets = [s.get("name") for s in w.template.get("imagePullSecrets") or []]
    evidence = tuple(sorted(set(texts), key=texts.index)[:4])
    if DNS.search(blob):
        host = image.split("/", 1)[0] if "/" in image else "docker.io"
        return [
            Fault(
                "image_registry_unresolvable",
                w.ref,
                f"{w.ref}'s image {image}: registry {host} does not resolve; fix the image's registry host",
                evidence,
                template_path="containers.image",
                rank=3,
            )
        ]
    if AUTH.search(blob) and (
        secrets or "retrieve some image pull secrets" in blob or not MISSING.search(blob)
    ):
        return [
            Fault(
                "image_pull_secret_missing",
                w.ref,
                f"{w.ref} cannot pull {image}: the registry refuses it without credentials"
                + (f" and pull secret {', '.join(map(str, secrets))} is missing" if secrets else "")
                + "; create the secret or fix spec.template.spec.imagePullSecrets",
                evidence,
                template_path="imagePullSecrets",
                rank=3,
            )
        ]
    return [
        Fault(
            "image_not_found",
            w.ref,
            f"{w.ref}'s image {image} does not exist in its registry: fix the "
            "image reference (tag or name) or roll back",
            evidence,
            template_path="containers.image",
            rank=3,
        )
    ]


def _terminations(w: Workload) -> list[str]:
    out = []
    for p in w.pods:
        for st in (p.get("status") or {}).get("containerStatuses") or []:
            for state in (
                (st.get("state") or {}).get("terminated"),
                (st.get("lastState") or {}).get("terminated"),
                (st.get("state") or {}).get("waiting"),
            ):
                if state and state.get("message"):
                    out.append(f"{name(p)}/{st.get('name')}: {state.get('reason')}: {state['message']}")
    return out


def mount_permission(w: Workload, view: ClusterView) -> list[Fault]:
    mounts = [m.get("mountPath") for c in w.containers() for m in c.get("volumeMounts") or []]
    mounts = [m for m in mounts if m and not m.startswith("/var/run/secrets")]
    if not mounts:
        return []
    lines = _terminations(w) + [line for text in view.logs_of(w.pods) for line in text.splitlines()[-200:]]
    for line in lines:
        if DENIED.search(line) and (path := next((m for m in mounts if m in line), None)):
            return [
                Fault(
                    "volume_mount_permission_denied",
                    w.ref,
                    f"{w.ref} cannot write its volume mounted at {path} (permission denied): set "
                    "securityContext.fsGroup / runAsUser to the volume's owner, or fix the volume's mode",
                    (line.strip()[:240],),
                    template_path="securityContext",
                    rank=3,
                )
            ]
    return []


RULES = (image_pull, mount_permission)
