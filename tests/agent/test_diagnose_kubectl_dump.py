"""`hemostat diagnose --snapshot` on what a real kubectl writes: `kubectl cluster-info dump
--output-directory` against the fake apiserver holding each planted fault (the directory layout,
list kinds, item shapes and pod logs as kubectl makes them), plus the kinds a dump leaves out
(quotas, claims, volumes, ServiceAccounts, EndpointSlices, pod usage) as `kubectl get -o json`
files beside it — a support bundle as an engineer would gather it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.agent.test_diagnose_snapshot import run
from tests.kubeapi.kubectl import kubectl_binary, write_kubeconfig
from tests.kubeapi.server import FakeApiServer
from tests.probes.cluster_cases import CASES, healthy
from tests.probes.test_k8s_cluster_live import LIVE, seed

EXTRA = {"shop.json": ["get", "resourcequotas,persistentvolumeclaims,serviceaccounts,endpointslices,"
                              "pods.metrics.k8s.io", "--namespace", "shop", "-o", "json"],
         "cluster.json": ["get", "persistentvolumes,storageclasses", "-o", "json"]}


def kubectl(kubeconfig: Path, *args: str) -> str:
    done = subprocess.run([kubectl_binary(), "--kubeconfig", str(kubeconfig), *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("cause", LIVE)
def test_a_kubectl_cluster_info_dump_is_diagnosed(fake_api: FakeApiServer, tmp_path: Path, cause: str) -> None:
    obj, plant = CASES[cause]
    lists = healthy()
    plant(lists)
    seed(fake_api, lists)
    fake_api.set_pod_log("shop", "cart-7d9f-abcde", "cart", '{"level":"info","msg":"listening"}\n')
    config, dump = write_kubeconfig(tmp_path / "kc", fake_api.url), tmp_path / "dump"
    kubectl(config, "cluster-info", "dump", "--namespaces", "shop,kube-system", "--output-directory", str(dump))
    assert (dump / "nodes.json").is_file() and (dump / "shop" / "pods.json").is_file()
    assert (dump / "shop" / "cart-7d9f-abcde" / "logs.txt").is_file() or not lists["pods"]
    for name, args in EXTRA.items():
        (dump / name).write_text(kubectl(config, *args))
    doc = json.loads(run("--snapshot", str(dump), "cart", "--json"))
    head = doc["ranked"][0]
    assert (head["root_cause"], head["object"]) == (cause, obj)
