"""Figure 1, diagnosis vs the checklist by hand: the playbook's investigation checklist as shell
commands run one after another, against `hemostat diagnose` of the same target.

    kubectl logs deployment/app --tail=100        (the fake kube-apiserver)
    curl -s PROMETHEUS/api/v1/query --data-urlencode 'query=<error ratio>'
                                                   (a real Prometheus scraping the app every 1 s;
                                                    without one: curl -s URL/metrics | grep errors)
    git log --oneline -10                          (a real deploy repo)
    psql DSN -c "SELECT count(*) FROM pg_stat_activity"   (the real PostgreSQL)
    curl -I URL/health                             (loopback dependency, 150 ms per answer)

`hemostat --config ... diagnose app --json --no-ledger` is timed as a process, start-up
included, as an engineer would type it, from a regular install (`bench/installed.py`); its metrics come from the `prometheus` probe (the same
error ratio, plus latency, saturation and burn-rate queries, and baselines a day and a week
back) when Prometheus is installed, else from `app-metrics` (two scrapes `SCRAPE_GAP_S` apart). A part missing on this machine (no PostgreSQL, no
kubectl, no Kubernetes logs probe yet) is dropped from both sides and named in `absent`.
The machine time is the lower bound of the checklist: a human also reads and types.

Timed the same way: `hemostat diagnose app --json --no-ledger --server URL`, the daemon of the
same install (`hemostat run`, started once, as the chart runs it) doing the diagnosis for the
caller's kubeconfig token after a TokenReview and a SubjectAccessReview.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import installed, services
from bench.incident import deploy_repo, registry, write_config
from bench.servers import DelayedHttp, app_server
from bench.timing import median, ms

DELAY_S = 0.15
SCRAPE_GAP_S = 0.5  # app-metrics scrapes twice to get a rate; the checklist's curl only once
KUBECTL = Path(__file__).resolve().parents[1] / ".cache" / "bin" / "kubectl"
STEP_TIMEOUT_S = 60
ERROR_RATIO = 'sum(rate(http_requests_total{job="app",code=~"5.."}[1m])) / sum(rate(http_requests_total{job="app"}[1m]))'
PACKAGES = ("agent", "probes", "actions", "policies")
PROBE_MODULES = {"probes.git_deploys": "git", "probes.app_metrics": "metrics", "probes.prometheus": "metrics",
                 "probes.http_health": "health", "probes.pg_activity": "postgres",
                 "probes.k8s_logs": "kubernetes"}


@dataclass
class Scene:
    """What both sides look at: the parts present, and each part's checklist command."""

    workdir: Path
    app: DelayedHttp
    repo: Path
    dsn: str | None = None
    kubeconfig: Path | None = None
    prometheus: str | None = None
    absent: list[str] = field(default_factory=list)

    def commands(self) -> dict[str, str]:
        q = shlex.quote
        steps = {}
        if self.kubeconfig is not None:
            steps["kubernetes"] = (f"{q(str(KUBECTL))} --kubeconfig {q(str(self.kubeconfig))} "
                                   "logs deployment/app --tail=100")
        if self.prometheus is not None:
            steps["metrics"] = (f"curl -s {self.prometheus}/api/v1/query "
                                f"--data-urlencode {q('query=' + ERROR_RATIO)}")
        else:
            steps["metrics"] = f"curl -s {self.app.url}/metrics | grep errors"
        steps["git"] = f"git -C {q(str(self.repo))} log --oneline -10"
        if self.dsn is not None:
            steps["postgres"] = f'psql {q(self.dsn)} -c "SELECT count(*) FROM pg_stat_activity"'
        steps["health"] = f"curl -sI {self.app.url}/health"
        return steps


def _probes_for(parts: set[str], prometheus: bool = False) -> list[str]:
    """The installed probes that do what the checklist's steps do (metrics from Prometheus
    when there is one, else from the app's own endpoint)."""
    chosen = []
    skip = "probes.app_metrics" if prometheus else "probes.prometheus"
    for name, reg in registry().probes.items():
        module = type(reg.plugin).__module__
        if PROBE_MODULES.get(module) in parts and module != skip:
            chosen.append(name)
    return sorted(chosen)


def _config(scene: Scene, parts: set[str]) -> Path:
    target: dict[str, Any] = {
        "name": "app", "namespace": "default", "deployment": "app", "container": "app",
        "probes": _probes_for(parts, scene.prometheus is not None), "deploy_repo": {"path": str(scene.repo)},
        "metrics": {"url": f"{scene.app.url}/metrics", "scrape_interval_s": SCRAPE_GAP_S},
        "dependencies": [{"name": "payments-api", "url": f"{scene.app.url}/health"}]}
    if scene.prometheus is not None:
        target["prometheus"] = {"url": scene.prometheus, "selector": 'job="app"', "window": "1m"}
    if scene.dsn is not None:
        target["postgres"] = {"dsn": {"env": "BENCH_PG_DSN"}}
    # for the daemon of the remote runs: no sweeps, no webhook, the approval API's token checks
    extra: dict[str, Any] = {"sweeps": False, "intake": {"webhook": False}}
    if scene.kubeconfig is not None:
        extra["kubernetes"] = {"kubeconfig": str(scene.kubeconfig)}
    return write_config(scene.workdir, [target], **extra)


def _checklist(commands: dict[str, str]) -> dict[str, float]:
    steps = {}
    for part, command in commands.items():
        started = time.perf_counter()
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
        steps[part] = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"checklist step {part!r} failed: {done.stderr[-500:]}")
    return steps


def _hemostat(binary: Path, config: Path, env: dict[str, str], server: str | None = None) -> tuple[float, dict[str, Any]]:
    """One timed `hemostat diagnose`: local (`--config`) or through the daemon (`--server`)."""
    where = ["--server", server] if server else []
    started = time.perf_counter()
    done = subprocess.run([str(binary), "--config", str(config), "diagnose", "app", "--json", "--no-ledger", *where],
                          capture_output=True, text=True, timeout=STEP_TIMEOUT_S, env={**os.environ, **env})
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3, 4):  # 3: an incident, 4: incomplete
        raise RuntimeError(f"hemostat diagnose failed: {done.stderr[-1000:]}")
    return elapsed, json.loads(done.stdout)


@contextlib.contextmanager
def _scene(workdir: Path) -> Iterator[Scene]:
    app = app_server(DELAY_S)
    try:
        scene = Scene(workdir, app, deploy_repo(workdir / "deploys", [4]))
        with contextlib.ExitStack() as stack:
            scene.prometheus = stack.enter_context(
                services.prometheus(workdir / "prometheus", app.url.removeprefix("http://")))
            if scene.prometheus is None:
                scene.absent.append("prometheus: not installed (scripts/install-services.sh); app-metrics instead")
            scene.dsn = stack.enter_context(services.postgres())
            if scene.dsn is None:
                scene.absent.append("postgres: no HEMOSTAT_TEST_PG_DSN and no local PostgreSQL binaries")
            has_probe = bool(_probes_for({"kubernetes"}))
            if KUBECTL.exists() and has_probe:
                scene.kubeconfig = stack.enter_context(services.kube_api(workdir))
            else:
                why = "no Kubernetes logs probe (probes/k8s_logs.py) registered yet" if not has_probe else \
                      f"no kubectl at {KUBECTL} (scripts/fetch-helm.sh fetches it)"
                scene.absent.append(f"kubernetes: {why}")
            yield scene
    finally:
        app.stop()


def run(quick: bool) -> dict[str, Any]:
    runs = 1 if quick else 5
    binary = installed.hemostat()
    with tempfile.TemporaryDirectory(prefix="bench-checklist-") as tmp, _scene(Path(tmp)) as scene:
        commands = scene.commands()
        config = _config(scene, set(commands))
        env = {"BENCH_PG_DSN": scene.dsn} if scene.dsn else {}
        client = {**env, "KUBECONFIG": str(scene.kubeconfig)} if scene.kubeconfig else None
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(installed.daemon(binary, config, env)) if client else None
            _checklist(commands), _hemostat(binary, config, env)  # warm-up: page cache, first connections
            if server and client:
                _hemostat(binary, config, client, server)
            by_hand: list[dict[str, float]] = []
            local: list[float] = []
            remote: list[float] = []
            report: dict[str, Any] = {}
            floor = _python_floor(binary, config, runs)
            for _ in range(runs):
                by_hand.append(_checklist(commands))
                elapsed, report = _hemostat(binary, config, env)
                local.append(elapsed)
                if server and client:
                    remote.append(_hemostat(binary, config, client, server)[0])
    return {**_summary(by_hand, local, report, commands, scene.absent), **_remote(by_hand, remote),
            "python_floor_ms": ms(floor),
            "python_floor_means": "python -c: click, the validated config, httpx, one HEAD to the slow "
                                  "dependency; the least a one-shot Python diagnosis can take"}


# The least a Python process must do before Hemostat's slowest check can finish: start, import
# click, load the validated config (pydantic) and httpx, send one HEAD to the dependency, exit.
FLOOR = """
import asyncio, sys
import click, httpx
from pathlib import Path
from agent.model.config import load_config
config = load_config(Path(sys.argv[1]))
async def head() -> None:
    async with httpx.AsyncClient() as client:
        await client.head(config.targets[0].dependencies[0].url.resolve())
asyncio.run(head())
"""


def _python_floor(binary: Path, config: Path, runs: int) -> float:
    python = binary.parent / "python"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(python), "-c", FLOOR, str(config)], check=True, capture_output=True,
                       timeout=STEP_TIMEOUT_S)
        times.append(time.perf_counter() - started)
    return median(times)


def _remote(by_hand: list[dict[str, float]], remote: list[float]) -> dict[str, Any]:
    if not remote:
        return {"via_daemon": None}
    checklist_s, remote_s = median([sum(run.values()) for run in by_hand]), median(remote)
    return {"via_daemon_ms": ms(remote_s), "ratio_via_daemon": round(checklist_s / remote_s, 3),
            "via_daemon_means": "the same diagnosis by `hemostat diagnose --server URL`: the daemon "
                                "(`hemostat run`, started once) runs the probes for the caller"}


def _summary(by_hand: list[dict[str, float]], hemostat: list[float], report: dict[str, Any],
             commands: dict[str, str], absent: list[str]) -> dict[str, Any]:
    checklist_s = median([sum(run.values()) for run in by_hand])
    hemostat_s = median(hemostat)
    probes = {p["probe"]: {"ms": ms(p["duration_s"]), "ok": p["ok"]} for p in report.get("probes", [])}
    slowest = max((p["duration_s"] for p in report.get("probes", [])), default=0.0)
    return {
        "runs": len(by_hand), "delay_ms": ms(DELAY_S), "scrape_gap_ms": ms(SCRAPE_GAP_S),
        "parts": sorted(commands), "absent": absent,
        "checklist_ms": ms(checklist_s),
        "checklist_steps_ms": {part: ms(median([run[part] for run in by_hand])) for part in commands},
        "hemostat_ms": ms(hemostat_s),
        "hemostat_probes": probes, "hemostat_slowest_probe_ms": ms(slowest),
        "hemostat_outside_probes_ms": ms(hemostat_s - slowest),
        "findings": sorted({f["kind"] for f in report.get("findings", [])}),
        "ratio": round(checklist_s / hemostat_s, 3),
        "ratio_means": "checklist time / hemostat diagnose time (above 1: hemostat is faster)",
    }
