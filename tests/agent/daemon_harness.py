"""Start `hemostat run` as a real process on loopback, and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from agent.ledger.sqlite import SqliteLedger
from tests.conftest import git_commit
from tests.loopback import LoopbackServer
from tests.services import free_port

HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
TOKEN = "test-webhook-token-123"


def now_iso(minutes_ago: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def failing_metrics(loopback: LoopbackServer, healed_by: Path | None = None) -> str:
    """An app whose error counter climbs; with `healed_by`, errors stop once that file says the
    mitigation is `done` (the app really recovers, so verification can see the symptom go)."""
    state = {"n": 0, "errors": 0}

    def body() -> str:
        state["n"] += 1
        healed = healed_by is not None and healed_by.exists() and "done" in healed_by.read_text()
        state["errors"] += 0 if healed else 80
        return f"http_requests_total {1000 + 200 * state['n']}\nhttp_requests_errors_total {state['errors']}\n"

    return loopback.route("/metrics", body=body)


def daemon_config(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path, metrics_url: str | None = None,
                  **extra: Any) -> Path:
    """A daemon config (sweeps off, webhook token in a file) for `checkout`: a deploy 4 minutes
    ago and a loopback app whose error counter climbs (or the app at `metrics_url`)."""
    git_commit(deploy_repo, "checkout v1.8", datetime.now(UTC) - timedelta(minutes=4))
    (tmp_path / "token").write_text(TOKEN)
    config = {
        "store": {"path": "ledger.db"},
        "sweeps": False,
        "intake": {"token": {"file": str(tmp_path / "token")}, "max_body_bytes": 65536},
        "targets": [{"name": "checkout", "deployment": "checkout",
                     "probes": ["git-deploys", "app-metrics"],  # no cluster in these tests
                     "deploy_repo": {"path": str(deploy_repo)},
                     "metrics": {"url": metrics_url or failing_metrics(loopback), "scrape_interval_s": 0.05}}],
        **extra,
    }
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class DaemonProcess:
    config: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ledger(self) -> SqliteLedger:
        return SqliteLedger(self.config.parent / "ledger.db")

    def post(self, payload: Any, token: str | None = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        body = raw if raw is not None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + "/webhook/alertmanager", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        return _send(request)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def _send(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def start_daemon(config: Path, env: dict[str, str] | None = None, port: int | None = None,
                 stdout: bool = False) -> DaemonProcess:
    """`hemostat run` on a free port; its stderr (and with `stdout`, its stdout) go to `log`."""
    port = port or free_port()
    log = config.parent / f"daemon-{port}.log"
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [HEMOSTAT, "--config", str(config), "run", "--listen", f"127.0.0.1:{port}"],
            stdout=stderr if stdout else subprocess.DEVNULL, stderr=stderr, env={**os.environ, **(env or {})},
        )
    daemon = DaemonProcess(config, port, proc, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}: {log.read_text()}")
        try:
            if daemon.get("/readyz")[0] == 200:
                return daemon
        except OSError:
            pass
        time.sleep(0.05)
    daemon.stop(signal.SIGKILL)
    raise AssertionError(f"daemon not ready: {log.read_text()}")


def wait_until(check: Any, timeout_s: float = 20.0, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every_s)


def alert_payload(target: str = "checkout", status: str = "firing", group_key: str = "{}:{alertname=\"HighErrorRate\"}",
                  fingerprint: str = "a1b2c3", severity: str = "critical", starts_at: str = "2026-11-27T02:55:00Z",
                  **extra_labels: str) -> dict[str, Any]:
    """An Alertmanager v4 webhook body, shaped like the real one."""
    labels = {"alertname": "HighErrorRate", "severity": severity, "hemostat_target": target, **extra_labels}
    return {
        "version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status,
        "receiver": "hemostat", "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": labels,
        "commonAnnotations": {"summary": f"{target} error rate above 5%"},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": [{
            "status": status, "labels": labels,
            "annotations": {"summary": f"{target} error rate above 5%"},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T03:20:00Z",
            "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=...",
            "fingerprint": fingerprint,
        }],
    }
