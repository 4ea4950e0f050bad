"""Figure 4, scale: one process sweeping 10, 100 and 1,000 targets (HTTP health + git-deploys).

The targets share a few loopback health servers (each answer 50 ms late) and a few git deploy
repos, served from this process; each scale runs in its own subprocess (bench/sweep_worker.py)
so its peak RSS is its own. Reported per target: the steady-state sweep time, CPU seconds (the
worker's own, and its git children's) and peak RSS. `bend` names the first scale where the cost
per target stops falling or grows faster than the target count.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.incident import deploy_repo, write_config
from bench.servers import DelayedHttp, health_server

HEALTH_DELAY_S = 0.05
SERVERS = 4
REPOS = 5
WORKER_TIMEOUT_S = 300


def _targets(n: int, servers: list[DelayedHttp], repos: list[Path]) -> list[dict[str, Any]]:
    return [{"name": f"svc-{i:04d}", "deployment": f"svc-{i:04d}", "probes": ["http-health", "git-deploys"],
             "deploy_repo": {"path": str(repos[i % len(repos)])},
             "dependencies": [{"name": "api", "url": f"{servers[i % len(servers)].url}/health"}]}
            for i in range(n)]


def _run_worker(config: Path, profile: Path | None = None, prototype: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.sweep_worker", str(config)]
    if profile is not None:
        command += ["--profile", str(profile)]
    if prototype:
        command.append("--prototype")
    done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"sweep worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _per_target(raw: dict[str, Any]) -> dict[str, Any]:
    n = raw["targets"]
    return {**raw,
            "sweep_ms_per_target": round(raw["sweep_s"] * 1000 / n, 3),
            "cpu_ms_per_target": round(raw["cpu_s"] * 1000 / n, 3),
            "cpu_children_ms_per_target": round(raw["cpu_children_s"] * 1000 / n, 3),
            "rss_kb_per_target": round(raw["peak_rss_mb"] * 1024 / n, 1),
            "rss_growth_kb_per_target": round((raw["peak_rss_mb"] - raw["rss_after_start_mb"]) * 1024 / n, 1)}


def bend(rows: list[dict[str, Any]]) -> str:
    """Where per-target cost stops amortizing: the first step whose per-target sweep time grows."""
    for before, after in itertools.pairwise(rows):
        growth = after["sweep_s"] / before["sweep_s"]
        scale = after["targets"] / before["targets"]
        if growth > scale * 0.8:  # near-linear or worse: no more amortization
            return (f"between {before['targets']} and {after['targets']} targets: sweep time grew "
                    f"{growth:.1f}x for {scale:.0f}x the targets (per-target cost no longer falls)")
    last = rows[-1]
    return f"no bend up to {last['targets']} targets: sweep time still grows slower than target count"


def run(quick: bool, profile: Path | None = None) -> dict[str, Any]:
    scales = (10, 50) if quick else (10, 100, 1000)
    servers = [health_server(HEALTH_DELAY_S) for _ in range(SERVERS)]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            work = Path(tmp)
            repos = [deploy_repo(work / f"deploys-{i}", [60]) for i in range(REPOS)]
            for n in scales:
                config = _scale_config(work, n, servers, repos)
                wants_profile = profile if profile is not None and n == scales[-1] else None
                rows.append(_per_target(_run_worker(config, wants_profile)))
            fixed = _per_target(_run_worker(config, prototype=True))  # the largest scale again
    finally:
        for server in servers:
            server.stop()
    return _summary(rows, fixed)


def _scale_config(work: Path, n: int, servers: list[DelayedHttp], repos: list[Path]) -> Path:
    scale_dir = work / f"scale-{n}"
    scale_dir.mkdir()
    return write_config(scale_dir, _targets(n, servers, repos), sweeps=False)


def _summary(rows: list[dict[str, Any]], fixed: dict[str, Any]) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    return {"health_delay_ms": HEALTH_DELAY_S * 1000, "servers": SERVERS, "repos": REPOS,
            "scales": rows, "bend": bend(rows),
            "ratio": round(last["sweep_ms_per_target"] / first["sweep_ms_per_target"], 3),
            "ratio_means": f"per-target sweep time at {last['targets']} / at {first['targets']} targets",
            "prototype_shared_tls": fixed,
            "prototype_speedup": round(last["sweep_s"] / fixed["sweep_s"], 2),
            "prototype_means": f"sweep time at {last['targets']} targets, current / one TLS context per process"}
