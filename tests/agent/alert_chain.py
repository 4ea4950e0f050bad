"""The real alert chain, for the tests and the benchmark: a loopback app whose error counters
climb while a target is failing -> the real Prometheus (rule `HighErrorRate`, one alert per
target, `for: 0s`) -> the real Alertmanager (a group per alert and target, repeats every few
seconds, `send_resolved`) -> `hemostat run`.

Counters grow with time, not with scrapes, so Prometheus and the daemon's own app-metrics probe
see the same rate however often each looks.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.agent.daemon_harness import DaemonProcess, start_daemon
from tests.loopback import LoopbackServer
from tests.services.alertmanager import Alertmanager, start_alertmanager
from tests.services.prometheus import PrometheusServer

REQUESTS_PER_S, ERRORS_PER_S = 10_000.0, 5_000.0  # 50% failing while a target fails
HISTORY = 50_000_000.0  # requests served well before the test: a clean baseline
RULES = {"groups": [{"name": "hemostat-chain", "rules": [{
    "alert": "HighErrorRate", "expr": "rate(http_requests_errors_total[3s]) > 0", "for": "0s",
    "labels": {"severity": "critical", "hemostat_target": "{{ $labels.target }}"},
    "annotations": {"summary": "{{ $labels.target }}: requests failing"},
}]}]}


@dataclass
class ErrorApp:
    """Per-target request and error counters; `fail(t)` makes t's errors climb, `recover(t)` stops."""

    targets: list[str]
    started: float = field(default_factory=time.monotonic)
    _failing_since: dict[str, float] = field(default_factory=dict)
    _errors: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, target: str) -> None:
        with self._lock:
            self._failing_since.setdefault(target, time.monotonic())

    def recover(self, target: str) -> None:
        with self._lock:
            since = self._failing_since.pop(target, None)
            if since is not None:
                self._errors[target] = self._errors.get(target, 0.0) + (time.monotonic() - since) * ERRORS_PER_S

    def counters(self, target: str) -> tuple[float, float]:
        with self._lock:
            now = time.monotonic()
            since = self._failing_since.get(target)
            errors = self._errors.get(target, 0.0) + ((now - since) * ERRORS_PER_S if since else 0.0)
            return (now - self.started) * REQUESTS_PER_S + HISTORY, errors

    def text(self, targets: list[str]) -> str:
        lines = ["# TYPE http_requests_total counter", "# TYPE http_requests_errors_total counter"]
        for t in targets:
            requests, errors = self.counters(t)
            lines += [f'http_requests_total{{target="{t}"}} {requests:.1f}',
                      f'http_requests_errors_total{{target="{t}"}} {errors:.1f}']
        return "\n".join(lines) + "\n"

    def mount(self, server: LoopbackServer) -> dict[str, str]:
        """`/metrics` (every target, for Prometheus) and `/<target>/metrics` (one, for the daemon)."""
        server.route("/metrics", body=lambda: self.text(self.targets))
        return {t: server.route(f"/{t}/metrics", body=lambda t=t: self.text([t])) for t in self.targets}


@dataclass
class Chain:
    app: ErrorApp
    daemon: DaemonProcess
    manager: Alertmanager
    prometheus: PrometheusServer

    def firing_since(self, target: str) -> float | None:
        """When Prometheus says the target's alert became active (epoch seconds), if firing."""
        import httpx

        alerts = httpx.get(f"{self.prometheus.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        for alert in alerts:
            if alert["labels"].get("hemostat_target") == target and alert["state"] == "firing":
                from datetime import datetime

                return datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()
        return None

    def stop(self) -> None:
        self.prometheus.stop()
        self.manager.stop()
        self.daemon.stop(signal.SIGKILL)


def start_chain(app: ErrorApp, loopback: LoopbackServer, config: Path, token_file: Path,
                alertmanager_binary: str, start_prometheus: Callable[..., PrometheusServer],
                env: dict[str, Any] | None = None) -> Chain:
    """Daemon first (Alertmanager needs its URL), then Alertmanager, then Prometheus."""
    daemon = start_daemon(config, env)
    manager = start_alertmanager(alertmanager_binary, config.parent / "alertmanager",
                                 f"{daemon.url}/webhook/alertmanager", token_file)
    try:
        prometheus = start_prometheus(targets=[loopback.url.removeprefix("http://") + "/metrics"],
                                      rules=RULES, alertmanagers=[f"127.0.0.1:{manager.port}"])
    except BaseException:
        manager.stop()
        daemon.stop(signal.SIGKILL)
        raise
    return Chain(app, daemon, manager, prometheus)
