"""The planted faults, continued: volumes, startup, runtime, routing, performance, infrastructure."""

from __future__ import annotations

from typing import Any

from tests.probes.cluster_cases import NS, T0, case
from tests.probes.cluster_plant import container, deployment, event, pending, unavailable, waiting

JSON = dict[str, Any]
C = dict[str, list[JSON]]
UNBOUND = (
    "0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/4 nodes are "
    "available: 4 Preemption is not helpful for scheduling."
)


def _claim(c: C, **spec: Any) -> JSON:
    deployment(c)["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    ]
    pvc = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": NS, "uid": "uid-data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
            "storageClassName": "manual",
            **spec,
        },
        "status": {"phase": "Pending"},
    }
    c["persistentvolumeclaims"].append(pvc)
    c["storageclasses"].append(
        {
            "kind": "StorageClass",
            "metadata": {"name": "manual"},
            "provisioner": "kubernetes.io/no-provisioner",
        }
    )
    pending(c, UNBOUND)
    return pvc


def _pv(c: C, name: str = "pv-data", **spec: Any) -> None:
    c["persistentvolumes"].append(
        {
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"tier": "db"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": "10Gi"},
                "storageClassName": "manual",
                **spec,
            },
            "status": {"phase": "Available"},
        }
    )


@case("pv_already_bound", "persistentvolumeclaim/data")
def _(c: C) -> None:  # pv_controller.go: "volume %q already bound to a different claim."
    _claim(c, volumeName="pv-data")
    _pv(c, claimRef={"name": "orders-data", "namespace": NS})
    c["persistentvolumes"][0]["status"]["phase"] = "Bound"
    event(
        c,
        "PersistentVolumeClaim",
        "data",
        "FailedBinding",
        'volume "pv-data" already bound to a different claim.',
    )


@case("pvc_access_mode_mismatch", "persistentvolumeclaim/data")
def _(c: C) -> None:
    _claim(c, accessModes=["ReadWriteMany"])
    _pv(c)


@case("pvc_capacity_mismatch", "persistentvolumeclaim/data")
def _(c: C) -> None:
    _claim(c, resources={"requests": {"storage": "50Gi"}})
    _pv(c)


@case("pvc_selector_mismatch", "persistentvolumeclaim/data")
def _(c: C) -> None:
    _claim(c, selector={"matchLabels": {"tier": "cache"}})
    _pv(c)


@case("pvc_storage_class_mismatch", "persistentvolumeclaim/data")
def _(c: C) -> None:  # ProvisioningFailed `storageclass.storage.k8s.io "fast-ssd" not found`
    _claim(c, storageClassName="fast-ssd")
    _pv(c)
    event(
        c,
        "PersistentVolumeClaim",
        "data",
        "ProvisioningFailed",
        'storageclass.storage.k8s.io "fast-ssd" not found',
    )


# pkg/kubelet/images/image_manager.go: Failed "Failed to pull image %q: %v"; the runtime's error follows
@case("image_not_found", "deployment/cart")
def _(c: C) -> None:
    img = "registry.example.com/shop/cart:1.5-typo"
    container(c)["image"] = img
    msg = (
        f'Failed to pull image "{img}": rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{img}": failed to resolve reference "{img}": {img}: not found'
    )
    waiting(c, "ImagePullBackOff", f'Back-off pulling image "{img}"')
    event(c, "Pod", "cart-7d9f-abcde", "Failed", msg)


@case("image_registry_unresolvable", "deployment/cart")
def _(c: C) -> None:
    img = "registry.exmaple.com/shop/cart:1.4"
    container(c)["image"] = img
    msg = (
        f'Failed to pull image "{img}": rpc error: code = Unknown desc = failed to pull and unpack image "{img}": '
        f'failed to resolve reference "{img}": failed to do request: Head "https://registry.exmaple.com/v2/shop/'
        'cart/manifests/1.4": dial tcp: lookup registry.exmaple.com on 10.96.0.10:53: no such host'
    )
    waiting(c, "ErrImagePull", msg)


@case("image_pull_secret_missing", "deployment/cart")
def _(c: C) -> None:  # kuberuntime_manager.go FailedToRetrieveImagePullSecret
    deployment(c)["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    img = container(c)["image"]
    waiting(
        c,
        "ErrImagePull",
        f'failed to pull and unpack image "{img}": failed to resolve reference "{img}": '
        "pulling from host registry.example.com failed with status code [manifests 1.4]: "
        "401 Unauthorized",
    )
    event(
        c,
        "Pod",
        "cart-7d9f-abcde",
        "FailedToRetrieveImagePullSecret",
        "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed.",
    )


@case("volume_mount_permission_denied", "deployment/cart")
def _(c: C) -> None:
    waiting(c, "CrashLoopBackOff", "back-off 40s restarting failed container=cart", "Running", 4)
    for pod in c["pods"]:
        pod["status"]["containerStatuses"][0]["lastState"] = {
            "terminated": {
                "reason": "Error",
                "exitCode": 1,
                "finishedAt": T0,
                "message": "open /var/lib/cart/cart.db: permission denied",
            }
        }


@case("container_oom_killed", "deployment/cart")
def _(c: C) -> None:
    waiting(c, "CrashLoopBackOff", "back-off 1m20s restarting failed container=cart", "Running", 6)
    for pod in c["pods"]:
        pod["status"]["containerStatuses"][0]["lastState"] = {
            "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": T0}
        }


def _probe_failing(c: C, which: str, message: str, restarts: int) -> None:
    # pkg/kubelet/prober/prober.go: Unhealthy "%s probe failed: %s"
    waiting(c, "CrashLoopBackOff", "back-off", "Running", restarts) if restarts else unavailable(c)
    for pod in c["pods"]:
        event(c, "Pod", pod["metadata"]["name"], "Unhealthy", f"{which} probe failed: {message}")
        if (
            which == "Liveness"
        ):  # kuberuntime_container.go: "Container %s failed liveness probe, will be restarted"
            event(
                c,
                "Pod",
                pod["metadata"]["name"],
                "Killing",
                "Container cart failed liveness probe, will be restarted",
                "Normal",
            )


@case("liveness_probe_wrong_port", "deployment/cart")
def _(c: C) -> None:
    container(c)["livenessProbe"]["httpGet"]["port"] = 8081
    _probe_failing(
        c,
        "Liveness",
        'Get "http://10.244.1.5:8081/healthz": dial tcp 10.244.1.5:8081: connect: connection refused',
        5,
    )


@case("liveness_probe_wrong_protocol", "deployment/cart")
def _(c: C) -> None:
    container(c)["livenessProbe"]["httpGet"]["scheme"] = "HTTPS"
    _probe_failing(
        c,
        "Liveness",
        'Get "https://10.244.1.5:8080/healthz": http: server gave HTTP response to HTTPS client',
        5,
    )


@case("liveness_probe_timing", "deployment/cart")
def _(c: C) -> None:
    container(c)["livenessProbe"]["timeoutSeconds"] = 1
    _probe_failing(
        c,
        "Liveness",
        'Get "http://10.244.1.5:8080/healthz": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)",
        5,
    )


@case("readiness_probe_wrong_port", "deployment/cart")
def _(c: C) -> None:
    container(c)["readinessProbe"]["httpGet"]["port"] = 9090
    _probe_failing(
        c,
        "Readiness",
        'Get "http://10.244.1.5:9090/healthz": dial tcp 10.244.1.5:9090: connect: connection refused',
        0,
    )


@case("readiness_probe_wrong_protocol", "deployment/cart")
def _(c: C) -> None:
    container(c)["readinessProbe"] = {"grpc": {"port": 8080}, "periodSeconds": 10}
    _probe_failing(
        c,
        "Readiness",
        'timeout: failed to connect service ":8080" within 1s: context deadline exceeded rpc error',
        0,
    )
