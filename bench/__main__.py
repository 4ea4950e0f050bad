"""`python -m bench [--quick] [--only a,b] [--out FILE] [--profile FILE]`: run the benchmarks,
write results.json and print a table. `make bench` runs the full set.

Figures: checklist (1), parallel (2), alerts (3), alert_chain (3b: through the real Prometheus and
Alertmanager), scale (4), logs (5); see docs/benchmarks.md.
A figure that fails is recorded with its error and the others still run; the exit code is 1 then.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import alert_chain, alerts, checklist, fault_diagnosis, logs, parallel, scale, time_to_mitigation
from bench.table import table
from bench.timing import machine

FIGURES: dict[str, Callable[[bool], dict[str, Any]]] = {
    "checklist": checklist.run, "parallel": parallel.run, "alerts": alerts.run, "alert_chain": alert_chain.run,
    "scale": scale.run, "logs": logs.run, "fault_diagnosis": fault_diagnosis.run,
    "time_to_mitigation": time_to_mitigation.run,
}
DEFAULT_OUT = Path(__file__).parent / "results.json"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Hemostat's benchmarks (issue 8)")
    parser.add_argument("--quick", action="store_true", help="a small smoke version (under a minute)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(FIGURES)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the results JSON")
    parser.add_argument("--profile", type=Path,
                        help="write a pyinstrument profile of the largest scale's sweep to this file")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(FIGURES)
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)} (choose from {', '.join(FIGURES)})")
    args.chosen = chosen
    return args


def _run_one(name: str, quick: bool, profile: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = scale.run(quick, profile) if name == "scale" else FIGURES[name](quick)
    except Exception as e:  # one broken figure must not hide the others
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> int:
    args = _args()
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                               "quick": args.quick, "machine": machine(), "figures": {}}
    for name in args.chosen:
        print(f"running {name} ...", flush=True)
        results["figures"][name] = _run_one(name, args.quick, args.profile)
        args.out.write_text(json.dumps(results, indent=2) + "\n")  # partial results survive a crash
    print(table(results["figures"]))
    print(f"\nwrote {args.out}")
    return 1 if any("error" in figure for figure in results["figures"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
