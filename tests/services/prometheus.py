"""Pytest plugin: a real Prometheus (Debian `prometheus`, 2.42) on a free loopback port.

`prometheus` (function) is a factory: `prometheus(targets=[...], rules=..., alertmanagers=[...],
backfill=...)` (keyword arguments; `launch(workdir, ...)` is the same for a wider scope) writes a config (scrape and evaluation interval 1 s), starts the server and waits
until it is ready; every server it started is stopped when the test ends.
- `targets`: "127.0.0.1:PORT" or "127.0.0.1:PORT/path" strings, scraped as job "app" (each
  target keeps its own `instance` label); `metrics_path` defaults to /metrics.
- `rules`: a rule-file document (a dict with "groups", or YAML text), loaded as rules.yml.
- `alertmanagers`: "127.0.0.1:PORT" of Alertmanagers to send firing alerts to.
- `backfill`: OpenMetrics text (ending in "# EOF") turned into TSDB blocks with
  `promtool tsdb create-blocks-from openmetrics` before start: history (a day or a week back)
  that `offset 1d` / `offset 1w` can read.

The returned `PrometheusServer` has `.url`, `.query(expr)`, `.query_range(...)`, `.wait_for(expr)`
(polls until the expression returns a sample), `.reload()` and `.stop()`.
A missing binary skips, or fails the run under HEMOSTAT_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.services import free_port, missing, terminate

INTERVAL = "1s"


@dataclass
class PrometheusServer:
    """One `prometheus` process serving http://127.0.0.1:port with its config in `workdir`."""

    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    def start(self) -> PrometheusServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        args = [self.binary, f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--log.level=warn"]
        log = (self.workdir / "prometheus.log").open("ab")
        self._proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        self._wait_ready()
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        terminate(self._proc)
        self._proc = None

    def reload(self) -> None:
        """Re-read the config file (and rule files) without a restart."""
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector (or scalar) `expr` evaluates to; raises on an API error."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self._api("/api/v1/query", params)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._api("/api/v1/query_range",
                         {"query": expr, "start": start, "end": end, "step": step})

    def wait_for(self, expr: str, timeout_s: float = 30.0,
                 until: Callable[[list[dict[str, Any]]], bool] = bool) -> list[dict[str, Any]]:
        """Poll `expr` until `until(result)` holds (by default: any sample); the real server
        scrapes and evaluates on its own clock, so there is no clock to inject here."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if until(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: {expr!r} gave {result!r} after {timeout_s:g}s")
            time.sleep(0.1)

    def _api(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        body = httpx.get(self.url + path, params=params, timeout=10).json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {body.get('errorType')}: {body.get('error')}")
        result = body["data"]["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                log = (self.workdir / "prometheus.log").read_text(errors="replace")
                raise RuntimeError(f"prometheus exited at start: {log[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"prometheus not ready on port {self.port} after {timeout_s:g}s")


def _scrape_configs(targets: list[str]) -> list[dict[str, Any]]:
    """One job per metrics path, so "127.0.0.1:PORT/other" scrapes /other."""
    by_path: dict[str, list[str]] = {}
    for target in targets:
        address, _, path = target.partition("/")
        by_path.setdefault("/" + (path or "metrics"), []).append(address)
    return [{"job_name": "app" if i == 0 else f"app{i}", "metrics_path": path,
             "static_configs": [{"targets": addresses}]}
            for i, (path, addresses) in enumerate(sorted(by_path.items()))]


def write_config(server: PrometheusServer, targets: list[str], rules: dict[str, Any] | str | None,
                 alertmanagers: list[str]) -> None:
    config: dict[str, Any] = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL,
                   "scrape_timeout": INTERVAL},
        "scrape_configs": _scrape_configs(targets)}
    if rules is not None:
        text = rules if isinstance(rules, str) else yaml.safe_dump(rules)
        (server.workdir / "rules.yml").write_text(text)
        config["rule_files"] = [str(server.workdir / "rules.yml")]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
    server.config_file.write_text(yaml.safe_dump(config))


def backfill_blocks(workdir: Path, openmetrics: str) -> None:
    """History for `offset` queries: promtool writes blocks straight into the data dir."""
    source = workdir / "backfill.om"
    source.write_text(openmetrics if openmetrics.endswith("\n") else openmetrics + "\n")
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                           str(source), str(workdir / "data")], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stderr.strip() or done.stdout.strip()}")


StartPrometheus = Callable[..., PrometheusServer]


def binary() -> str:
    """The `prometheus` executable, or skip (fail under HEMOSTAT_REQUIRE_SERVICES=1)."""
    found = shutil.which("prometheus")
    if found is None:
        missing("prometheus is not installed", "install it: apt-get install -y prometheus "
                "(scripts/install-services.sh does)")
    assert found is not None
    return found


def launch(workdir: Path, targets: list[str] | None = None, rules: dict[str, Any] | str | None = None,
           alertmanagers: list[str] | None = None, backfill: str | None = None) -> PrometheusServer:
    """Configure and start one server in `workdir`; the caller stops it."""
    server = PrometheusServer(binary=binary(), workdir=workdir)
    write_config(server, targets or [], rules, alertmanagers or [])
    if backfill:
        backfill_blocks(server.workdir, backfill)
    return server.start()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """Start real Prometheus servers for this test (see the module docstring)."""
    binary()
    started: list[PrometheusServer] = []

    def start(**kwargs: Any) -> PrometheusServer:
        server = launch(tmp_path_factory.mktemp("prometheus"), **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
