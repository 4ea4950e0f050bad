"""Pytest plugin: the real Alertmanager (Debian's `prometheus-alertmanager`, 0.25) on a free
loopback port, from a generated config whose webhook receiver points at a Hemostat daemon.

`alertmanager_binary` (session) finds the binary: missing, it skips locally and fails the run
under HEMOSTAT_REQUIRE_SERVICES=1. `start_alertmanager(...)` starts one for a test (the webhook
URL differs per daemon): gossip off (`--cluster.listen-address=`), storage in the test's tmp
dir, the bearer token read from a file (`http_config.authorization.credentials_file`), short
`group_wait`/`group_interval`, a `repeat_interval` of seconds and `send_resolved: true`, so a
test sees first notifications, repeats and resolves within seconds.

`Alertmanager.failed_notifications()` reads its own
`alertmanager_notifications_failed_total{integration="webhook"}`: the truth about deliveries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.services import free_port, missing, terminate

BINARY = "prometheus-alertmanager"


@dataclass(frozen=True)
class Timing:
    """Alertmanager's notification timing; seconds, kept short so tests see repeats quickly."""

    group_wait: str = "1s"
    group_interval: str = "1s"
    repeat_interval: str = "3s"


@dataclass
class Alertmanager:
    """One running Alertmanager; `post` injects alerts through its v2 API."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts (what Prometheus does); raises unless Alertmanager took them."""
        request = urllib.request.Request(self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200, answer.read()

    def counter(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` (a counter, without `_total`) matching `labels`."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return sum(s.value for family in text_string_to_metric_families(text) if family.name == name
                   for s in family.samples if s.name == f"{name}_total"
                   and all(s.labels.get(k) == v for k, v in labels.items()))

    def failed_notifications(self) -> float:
        return self.counter("alertmanager_notifications_failed", integration="webhook")

    def notifications(self) -> float:
        return self.counter("alertmanager_notifications", integration="webhook")

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)


def alert(target: str, alertname: str = "HighErrorRate", *, starts_at: datetime,
          ends_at: datetime | None = None, severity: str = "critical", **labels: str) -> dict[str, Any]:
    """One alert as Prometheus posts it; `ends_at` in the past resolves it."""
    body: dict[str, Any] = {
        "labels": {"alertname": alertname, "severity": severity, "hemostat_target": target, **labels},
        "annotations": {"summary": f"{target}: {alertname}"},
        "startsAt": starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus.internal:9090/graph",
    }
    if ends_at is not None:
        body["endsAt"] = ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return body


def write_config(workdir: Path, webhook_url: str, token_file: Path, timing: Timing) -> Path:
    config = {
        "route": {"receiver": "hemostat", "group_by": ["alertname", "hemostat_target"],
                  "group_wait": timing.group_wait, "group_interval": timing.group_interval,
                  "repeat_interval": timing.repeat_interval},
        "receivers": [{"name": "hemostat", "webhook_configs": [{
            "url": webhook_url, "send_resolved": True,
            "http_config": {"authorization": {"credentials_file": str(token_file)}},
        }]}],
    }
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_alertmanager(binary: str, workdir: Path, webhook_url: str, token_file: Path,
                       timing: Timing = Timing()) -> Alertmanager:
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, webhook_url, token_file, timing)
    port, log = free_port(), workdir / "alertmanager.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
             "--log.level=debug"], stdout=out, stderr=out)
    manager = Alertmanager(port, proc, log)
    _wait_ready(manager)
    return manager


def _wait_ready(manager: Alertmanager, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if manager.proc.poll() is not None:
            raise RuntimeError(f"{BINARY} exited at start: {manager.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(manager.url + "/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    manager.stop()
    raise RuntimeError(f"{BINARY} not ready on port {manager.port} after {timeout_s:g}s")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """The Alertmanager binary, or skip (fail under HEMOSTAT_REQUIRE_SERVICES=1)."""
    binary = shutil.which(BINARY)
    if binary is None:
        missing(f"{BINARY} is not installed", "run scripts/install-services.sh as root")
    assert binary is not None
    return binary
