"""Figure 2, parallelism overhead: one diagnosis pass (`runner.collect_all`, every probe at once)
against its slowest probe run alone. Ideal is 1.0: a pass costs the slowest probe, not the sum.

Probes and latencies: app-metrics (two scrapes of an app answering in 100 ms, 200 ms apart),
http-health (three dependencies answering in 50, 150 and 300 ms), git-deploys (a real repo).
Every figure is the median of several passes, all in this process on one event loop.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.diagnosis.runner import collect_all, probes_for
from agent.diagnosis.service import probe_context
from agent.diagnosis.wiring import App, build_app
from agent.model import TargetSpec
from agent.model.config import Config
from bench.incident import deploy_repo, registry, write_tree_and_policy
from bench.servers import DelayedHttp, app_server, health_server
from bench.timing import median, ms

APP_DELAY_S = 0.10
SCRAPE_GAP_S = 0.20
DEPENDENCY_DELAYS_S = (0.05, 0.15, 0.30)


def _target(app: DelayedHttp, deps: list[DelayedHttp], repo: Path) -> dict[str, Any]:
    return {"name": "checkout", "deployment": "checkout", "probes": ["app-metrics", "git-deploys", "http-health"],
            "deploy_repo": {"path": str(repo)},
            "metrics": {"url": f"{app.url}/metrics", "scrape_interval_s": SCRAPE_GAP_S},
            "dependencies": [{"name": f"dep-{i}", "url": f"{d.url}/health"} for i, d in enumerate(deps)]}


async def _timed(app: App, target: TargetSpec, names: list[str]) -> float:
    started = time.perf_counter()
    observations = await collect_all(target, app.registry, probe_context(app), names)
    elapsed = time.perf_counter() - started
    failed = [o.probe for o in observations if not o.ok]
    if failed:
        raise RuntimeError(f"probes failed during the benchmark: {failed}")
    return elapsed


async def _passes(app: App, target: TargetSpec, runs: int) -> dict[str, list[float]]:
    names = probes_for(target, app.registry)
    await _timed(app, target, names)  # warm-up: imports, first connections
    times: dict[str, list[float]] = {"all": [], **{n: [] for n in names}}
    for _ in range(runs):
        times["all"].append(await _timed(app, target, names))
        for name in names:
            times[name].append(await _timed(app, target, [name]))
    return times


def run(quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 9
    app_http = app_server(APP_DELAY_S)
    deps = [health_server(d) for d in DEPENDENCY_DELAYS_S]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
            work = Path(tmp)
            repo = deploy_repo(work / "deploys", [4])
            tree, policy = write_tree_and_policy(work)
            config = Config.model_validate({"tree": str(tree), "policy": str(policy),
                                            "targets": [_target(app_http, deps, repo)]})
            app = build_app(config, registry())
            times = asyncio.run(_passes(app, config.targets[0], runs))
    finally:
        for server in (app_http, *deps):
            server.stop()
    return _summary(times, runs)


def _summary(times: dict[str, list[float]], runs: int) -> dict[str, Any]:
    per_probe = {name: median(values) for name, values in times.items() if name != "all"}
    slowest = max(per_probe, key=lambda name: per_probe[name])
    whole = median(times["all"])
    return {
        "runs": runs,
        "pass_ms": ms(whole),
        "slowest_probe": slowest,
        "slowest_probe_ms": ms(per_probe[slowest]),
        "probes_ms": {name: ms(v) for name, v in sorted(per_probe.items())},
        "sum_of_probes_ms": ms(sum(per_probe.values())),
        "ratio": round(whole / per_probe[slowest], 3),
        "ratio_vs_sequential": round(whole / sum(per_probe.values()), 3),
        "latencies": {"app_ms": ms(APP_DELAY_S), "scrape_gap_ms": ms(SCRAPE_GAP_S),
                      "dependencies_ms": [ms(d) for d in DEPENDENCY_DELAYS_S]},
    }
