"""Peak memory of a whole `hemostat diagnose` stays under a documented bound whatever the
remote side does (docs/limits.md).

Each diagnosis runs as a real subprocess; its peak RSS comes from the kernel (`os.wait4`), and
is compared with the same diagnosis against well-behaved servers. Hostile cases: every HTTP
endpoint (health, metrics, status page) answering a body that never ends, and a log storm of
50 pods x 2 containers (current and previous) each logging 10,000 long error lines, served by
the fake apiserver over real HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.services import write_kubeconfig
from tests import hostile_http
from tests.hostile_http import HostileServer
from tests.kubeapi.server import FakeApiServer
from tests.loopback import LoopbackServer

MiB = 1 << 20
GROWTH_BOUND = 64 * MiB  # documented in docs/limits.md: peak RSS over the tame run's
NS, APP, PODS = "shop", "app", 50


def diagnose_peak_rss(config: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """(peak RSS in bytes, the recording) of `hemostat diagnose app --record F --no-ledger`."""
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    exe = Path(sys.executable).parent / "hemostat"
    with (tmp_path / "stderr").open("w+b") as err:
        process = subprocess.Popen([str(exe), "--config", str(path), "diagnose", APP, "--json",
                                    "--no-ledger", "--record", str(tmp_path / "recorded.yaml")], stdout=subprocess.PIPE, stderr=err)
        assert process.stdout is not None
        with process.stdout:
            out = process.stdout.read()  # to EOF; the probes' own timeouts bound the run
        _, status, usage = os.wait4(process.pid, 0)  # this child's rusage, not all children's
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        assert process.returncode in (0, 1, 3, 4), err.read().decode()[-2000:]
    assert json.loads(out)["target"] == APP
    return usage.ru_maxrss * 1024, yaml.safe_load((tmp_path / "recorded.yaml").read_text())


def target(**extra: Any) -> dict[str, Any]:
    return {"name": APP, "namespace": NS, "deployment": APP, **extra}


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    yield from hostile_http.serve()


def http_target(health: str, metrics: str, statuspage: str) -> dict[str, Any]:
    return target(probes=["http-health", "app-metrics", "provider-status"],
                  dependencies=[{"name": "payments", "url": health, "method": "GET",
                                 "statuspage_url": statuspage}],
                  metrics={"url": metrics, "scrape_interval_s": 0.05})


def test_endless_http_bodies_stay_within_the_bound(hostile: HostileServer, loopback: LoopbackServer,
                                                   tmp_path: Path) -> None:
    tame_status = '{"page": {"name": "P"}, "status": {"indicator": "none", "description": "ok"}}'
    loopback.route("/api/v2/status.json", body=tame_status, content_type="application/json")
    loopback.route("/api/v2/incidents/unresolved.json", body='{"incidents": []}',
                   content_type="application/json")
    tame, _ = diagnose_peak_rss({"targets": [http_target(
        loopback.route("/health"), loopback.route("/metrics", body="x_total 1\n"), loopback.url)]}, tmp_path)
    hostile.endless.update({"/health", "/metrics", "/api/v2/status.json", "/api/v2/incidents/unresolved.json"})
    peak, report = diagnose_peak_rss({"targets": [http_target(
        hostile.url("/health"), hostile.url("/metrics"), hostile.url("/"))]}, tmp_path)
    print(f"endless bodies: peak RSS {peak / MiB:.1f} MiB, tame {tame / MiB:.1f} MiB, "
          f"server sent {sum(hostile.sent.values()) / MiB:.0f} MiB")
    assert peak - tame < GROWTH_BOUND, f"peak {peak / MiB:.0f} MiB vs tame {tame / MiB:.0f} MiB"
    assert "truncated" in str(report)


def storm(api: FakeApiServer, lines: int) -> None:
    """50 pods x (current + previous) containers, every log the same `lines` long error lines."""
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
              "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]}}}})
    text = "\n".join(f"ERROR order {i} failed: upstream timeout after {i % 5000} ms " + "x" * 150
                     for i in range(lines))
    api.set_pod_log(NS, "app-0", "app", text, timestamps=[datetime.now(UTC)] * lines)
    for n in range(PODS):
        api.seed({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"app-{n}", "namespace": NS, "labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]},
                  "status": {"phase": "Running", "containerStatuses": [
                      {"name": "app", "restartCount": 3, "ready": True, "state": {"running": {}}}]}})
        for previous in (False, True):
            api.logs.share((NS, f"app-{n}", "app", previous), like=(NS, "app-0", "app", False))


def logs_config(api: FakeApiServer, tmp_path: Path) -> dict[str, Any]:
    return {"kubernetes": {"kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", api.url))},
            "probe_timeout_s": 60,
            "targets": [target(probes=["k8s-logs"], logs={"tail_lines": 10000, "since_seconds": 3600})]}


def test_a_50_pod_log_storm_stays_within_the_bound(kube_api: FakeApiServer, tmp_path: Path) -> None:
    storm(kube_api, lines=20)
    tame, _ = diagnose_peak_rss(logs_config(kube_api, tmp_path), tmp_path)
    storm(kube_api, lines=10000)  # ~1.9 MiB per log, 100 logs
    peak, report = diagnose_peak_rss(logs_config(kube_api, tmp_path), tmp_path)
    print(f"log storm: peak RSS {peak / MiB:.1f} MiB, tame {tame / MiB:.1f} MiB")
    assert peak - tame < GROWTH_BOUND, f"peak {peak / MiB:.0f} MiB vs tame {tame / MiB:.0f} MiB"
    [observation] = [o for o in report["observations"] if o["probe"] == "k8s-logs"]
    assert observation["data"]["pods"] == PODS and observation["data"]["truncated"]["logs_cut"] > 0
