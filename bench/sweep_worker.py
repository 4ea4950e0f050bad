"""One process sweeping N targets, run by figure 4 (bench/scale.py) as its own subprocess so that
ru_maxrss is this scale's peak alone.

    python -m bench.sweep_worker CONFIG [--profile FILE] [--prototype]

Builds the app from CONFIG as `hemostat run` would, then runs the daemon's own sweep of every
target at once, twice: the first sweep pays for imports, connections and thread start-up; the
second is the steady state that is reported. Prints one JSON line on stdout. `--prototype` swaps
in bench/prototype.py's `http-health` (one TLS context per process) to measure the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import time
from pathlib import Path
from typing import Any

from agent.diagnosis.wiring import build_app
from agent.ledger.sqlite import SqliteLedger
from agent.model.config import load_config
from agent.server.daemon import Daemon
from bench.incident import registry
from bench.prototype import with_shared_tls
from bench.timing import cpu_seconds, peak_rss_mb


async def _sweep_all(daemon: Daemon, failures: dict[str, int]) -> float:
    """Sweep every target at once; a sweep that raises is counted by error type, not fatal."""
    started = time.perf_counter()
    results = await asyncio.gather(*(daemon.sweep(t) for t in daemon.app.config.targets),
                                   return_exceptions=True)
    elapsed = time.perf_counter() - started
    for result in results:
        if isinstance(result, BaseException):
            key = f"{type(result).__name__}: {str(result).split(':')[-1].strip()[:80]}"
            failures[key] = failures.get(key, 0) + 1
    return elapsed


def _incident_headlines(daemon: Daemon) -> dict[str, int]:
    """What the sweeps opened incidents for: headlines without the target's name or numbers."""
    out: dict[str, int] = {}
    for incident in daemon.ledger.incidents():
        what = re.sub(r"\d+", "N", incident.title.split(": ", 1)[-1])[:80]
        out[what] = out.get(what, 0) + 1
    return out


def _probe_errors(daemon: Daemon) -> dict[str, float]:
    """Probe failures over both sweeps, `probe:code` -> count, from the daemon's own counters."""
    out: dict[str, float] = {}
    for metric in daemon.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "hemostat_probe_failures_total":
                key = f"{sample.labels['probe']}:{sample.labels['code']}"
                out[key] = out.get(key, 0) + sample.value
    return out


async def measure(config_path: Path, profile: Path | None, prototype: bool) -> dict[str, Any]:
    config = load_config(config_path)
    app = build_app(config, with_shared_tls(registry()) if prototype else registry())
    daemon = Daemon(app, SqliteLedger(config.store.path))
    rss_before = peak_rss_mb()
    failures: dict[str, int] = {}
    cold = await _sweep_all(daemon, failures)
    cpu_self, cpu_children = cpu_seconds(), cpu_seconds(resource.RUSAGE_CHILDREN)
    profiler = _start_profiler() if profile else None
    warm = await _sweep_all(daemon, failures)
    if profiler is not None and profile is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {"targets": len(config.targets), "cold_sweep_s": cold, "sweep_s": warm,
            "cpu_s": cpu_seconds() - cpu_self,
            "cpu_children_s": cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_children,
            "peak_rss_mb": peak_rss_mb(), "rss_after_start_mb": rss_before,
            "probe_errors": _probe_errors(daemon),
            "incidents": _incident_headlines(daemon), "sweep_failures": failures}


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile of the warm sweep")
    parser.add_argument("--prototype", action="store_true", help="http-health with one shared TLS context")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.config, args.profile, args.prototype))))


if __name__ == "__main__":
    main()
