"""The container image, built with podman and run the way the Helm chart runs it.

`scripts/build-image.sh` builds the Dockerfile on a Debian base made from Debian's packages (no
container registry is reachable here). The container then gets what the chart's Deployment gives
the pod: its user and groups, a read-only root filesystem, no capabilities, the container's env,
and the rendered hemostat.yaml, policy and webhook token mounted where the chart mounts them. It
must answer /healthz and /readyz, take an authenticated Alertmanager webhook into its ledger,
refuse an unauthenticated one, and write nothing outside its volumes. Needs root, podman, runc
and mmdebstrap (scripts/install-services.sh installs them); missing, the tests skip, or fail
under HEMOSTAT_REQUIRE_SERVICES=1 as in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import __version__
from tests.helm.conftest import ROOT, Manifest, Render, report
from tests.loopback import LoopbackServer
from tests.services import free_port, missing

# One tag per checkout: podman's image store is machine-wide, and another checkout's suite
# building the same tag between this one's build and run would test other code.
IMAGE = f"localhost/hemostat:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"
TOKEN = "image-test-" + uuid.uuid4().hex
# crun fails on these machines' hybrid cgroups, and the runtime may not raise rlimits.
PODMAN = ["podman", "--runtime", "runc"]
RUN = [*PODMAN, "run", "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def image() -> str:
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed", "scripts/install-services.sh installs podman, runc, mmdebstrap")
    if os.geteuid() != 0:
        missing("building the image needs root", "run the suite as root, as CI does")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build-image.sh"), IMAGE],
                          capture_output=True, text=True, timeout=840, check=False)
    assert done.returncode == 0, f"scripts/build-image.sh failed:\n{done.stderr[-3000:]}"
    size = int(_podman("image", "inspect", IMAGE, "--format", "{{.Size}}"))
    report(f"image {IMAGE}: {size / 1e6:.0f} MB")
    return IMAGE


@dataclass
class Pod:
    """A running container and the host folders behind its volumes."""

    name: str
    port: int
    volumes: dict[str, Path]  # mountPath -> host folder
    options: list[str]  # podman's, from the rendered pod spec

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hemostat(self, *args: str) -> Any:
        return json.loads(_podman("exec", self.name, "hemostat", *args, "--json"))


@pytest.fixture(scope="module")
def dependency() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    server.route("/health", status=503, body="payments down")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pod(image: str, render: Render, dependency: LoopbackServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    port = free_port()
    manifests = render(sets=[
        "intake.existingSecret=hemostat-webhook", f"intake.port={port}",
        "config.sweeps=false",  # incidents come from the test's alerts only, never from a sweep
        "targets[0].name=checkout", "targets[0].dependencies[0].name=payments",
        f"targets[0].dependencies[0].url={dependency.url}/health",
    ])
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    volumes = _materialise(spec, manifests, tmp_path_factory.mktemp("pod"))
    name, options = f"hemostat-test-{uuid.uuid4().hex[:8]}", _pod_options(spec, volumes)
    subprocess.run([*RUN, "--detach", "--name", name, *options, image,
                    *spec["containers"][0].get("args", [])], check=True, capture_output=True, timeout=60)
    try:
        pod = Pod(name, port, volumes, options)
        _wait_ready(pod)
        yield pod
    finally:
        subprocess.run([*PODMAN, "rm", "--force", name], capture_output=True, timeout=60, check=False)


def test_image_reports_the_packaged_version(image: str) -> None:
    done = subprocess.run([*RUN, "--rm", image, "--version"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == f"hemostat, version {__version__}"


def test_health_and_readiness_answer_on_the_intake_port(pod: Pod) -> None:
    assert httpx.get(pod.url("/healthz"), timeout=5).status_code == 200
    ready = httpx.get(pod.url("/readyz"), timeout=5)
    assert ready.status_code == 200, ready.text


def test_webhook_without_the_token_is_refused_and_records_nothing(pod: Pod) -> None:
    before = pod.hemostat("incidents")
    answer = httpx.post(pod.url("/webhook/alertmanager"), json=_alert("Forged"), timeout=10)
    assert answer.status_code == 401
    assert pod.hemostat("incidents") == before


def test_authenticated_alert_is_recorded_and_diagnosed_in_the_mounted_ledger(pod: Pod) -> None:
    answer = httpx.post(pod.url("/webhook/alertmanager"), json=_alert("CheckoutErrors"),
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code in (200, 202), answer.text
    incidents = [i for i in pod.hemostat("incidents") if i["target"] == "checkout"]
    assert len(incidents) == 1
    timeline = _wait_for_finding(pod, incidents[0]["id"], "payments")
    assert any("payments" in json.dumps(e) for e in timeline)
    ledger = pod.volumes["/var/lib/hemostat"]
    assert (ledger / "ledger.db").stat().st_size > 0


def test_nothing_is_written_outside_the_mounted_volumes(image: str, pod: Pod) -> None:
    """The daemon's container differs from its image only where the runtime itself makes the
    mount points and /etc/hosts: exactly as a container that only printed its version."""
    httpx.get(pod.url("/metrics"), timeout=5)  # exercise the daemon once more before looking
    reference = f"{pod.name}-reference"
    subprocess.run([*RUN, "--name", reference, *pod.options, image, "--version"],
                   capture_output=True, timeout=60, check=True)
    try:
        runtime_made = set(_podman("diff", reference).splitlines())
    finally:
        subprocess.run([*PODMAN, "rm", "--force", reference], capture_output=True, timeout=60, check=False)
    written = set(_podman("diff", pod.name).splitlines()) - runtime_made
    assert written == set(), f"the daemon wrote outside its volumes: {sorted(written)}"
    assert (pod.volumes["/var/lib/hemostat"] / "ledger.db").exists()  # it did write, where allowed


def test_a_uid_with_no_passwd_entry_runs_the_cli(image: str, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # OpenShift gives the pod a random UID and group 0
    (tmp_path / "hemostat.yaml").write_text("store: {path: ledger.db}\n")  # a config must exist
    done = subprocess.run([*RUN, "--rm", "--read-only", "--user", "12345:0", "-v", f"{tmp_path}:/work",
                           "-w", "/work", "-e", "HEMOSTAT_CONFIG=/work/hemostat.yaml", image,
                           "proposals", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


# --- the pod as the chart describes it -----------------------------------------------------


def _pod_options(spec: Manifest, volumes: dict[str, Path]) -> list[str]:
    """podman options for what the rendered pod spec asks of the runtime."""
    container, pod_ctx = spec["containers"][0], spec.get("securityContext", {})
    ctx = container.get("securityContext", {})
    assert ctx.get("readOnlyRootFilesystem") and ctx.get("allowPrivilegeEscalation") is False
    options = ["--read-only", "--read-only-tmpfs=false", "--security-opt", "no-new-privileges",
               "--user", f"{ctx.get('runAsUser', pod_ctx.get('runAsUser'))}:{pod_ctx['runAsGroup']}",
               "--group-add", str(pod_ctx["fsGroup"])]
    options += [f"--cap-drop={cap}" for cap in ctx["capabilities"]["drop"]]
    for var in container.get("env", []):
        value = var.get("value", f"test-{var['name'].lower()}")  # valueFrom: the downward API
        options += ["--env", f"{var['name']}={value}"]
    for mount in container["volumeMounts"]:
        suffix = ":ro" if mount.get("readOnly") else ""
        options += ["--volume", f"{volumes[mount['mountPath']]}:{mount['mountPath']}{suffix}"]
    return options


def _materialise(spec: Manifest, manifests: list[Manifest], root: Path) -> dict[str, Path]:
    """A host folder per volume mount, filled as the kubelet would fill it."""
    config_maps = {m["metadata"]["name"]: m["data"] for m in manifests if m["kind"] == "ConfigMap"}
    by_name = {v["name"]: v for v in spec["volumes"]}
    fs_group = spec["securityContext"]["fsGroup"]
    folders = {}
    for mount in spec["containers"][0]["volumeMounts"]:
        folder = root / mount["name"]
        folder.mkdir()
        for source in by_name[mount["name"]].get("projected", {}).get("sources", []):
            _project(folder, source, config_maps, fs_group)
        if not mount.get("readOnly"):  # emptyDir / PVC: writable by the pod's fsGroup
            os.chown(folder, 0, fs_group)
            folder.chmod(0o2775)
        folders[mount["mountPath"]] = folder
    return folders


def _project(folder: Path, source: Manifest, config_maps: dict[str, dict[str, str]], fs_group: int) -> None:
    if "configMap" in source:
        data = config_maps[source["configMap"]["name"]]
        for item in source["configMap"]["items"]:
            _write(folder / item["path"], data[item["key"]], 0o644)
    elif "secret" in source:  # the only secret the test values name is the webhook token
        assert source["secret"]["name"] == "hemostat-webhook"
        for item in source["secret"]["items"]:
            path = _write(folder / item["path"], TOKEN, 0o440)
            os.chown(path, 0, fs_group)


def _write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _alert(name: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "hemostat", "groupKey": f"{{}}:{{alertname={name}}}",
            "groupLabels": {"alertname": name}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.invalid", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": name, "target": "checkout"},
                        "annotations": {"summary": "checkout errors"}, "fingerprint": uuid.uuid4().hex[:16],
                        "startsAt": "2026-11-30T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.invalid/graph"}]}


def _wait_ready(pod: Pod, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(pod.url("/readyz"), timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    logs = subprocess.run([*PODMAN, "logs", pod.name], capture_output=True, text=True, check=False)
    pytest.fail(f"the container never became ready:\n{(logs.stdout + logs.stderr)[-3000:]}")


def _wait_for_finding(pod: Pod, incident: str, needle: str, timeout_s: float = 60) -> list[Any]:
    """The incident's timeline once a diagnosis event mentions `needle`."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = pod.hemostat("show", incident)
        timeline = shown.get("timeline") or shown.get("events") or []
        if any(needle in json.dumps(e) for e in timeline) or time.monotonic() > deadline:
            return list(timeline)
        time.sleep(0.5)


def _podman(*args: str) -> str:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"podman {' '.join(args)} failed: {done.stderr[-2000:]}"
    return done.stdout
