"""`kubectl logs -f` against the fake stays open and prints lines set later, as it does on a
cluster (tests/cluster/test_probes.py shows the real one following kwok's log file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kubeapi.kubectl import kubectl_binary, write_kubeconfig
from tests.kubeapi.server import FakeApiServer


@pytest.mark.fake_only
def test_logs_follow_streams_lines_set_after_it_started(fake_api: FakeApiServer, tmp_path: Path) -> None:
    fake_api.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                   "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]}, "status": {"phase": "Running"}})
    fake_api.set_pod_log("default", "p", "app", "started\n")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_api.url)
    following = subprocess.Popen([kubectl_binary(), "--kubeconfig", str(kubeconfig), "logs", "-f", "p"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert following.stdout is not None
    assert following.stdout.readline() == "started\n"
    fake_api.set_pod_log("default", "p", "app", "started\nERROR boom\n")
    assert following.stdout.readline() == "ERROR boom\n"  # still open: a new line arrives
    assert following.poll() is None
    following.terminate()
    following.communicate(timeout=30)
