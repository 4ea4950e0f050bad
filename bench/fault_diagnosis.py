"""Figure 6, fault diagnosis: `hemostat diagnose --snapshot DIR` on a 12-workload namespace, each
workload with a different planted fault (tests/probes/cluster_cases.py: image, probes, OOM,
scheduling, routing, ServiceAccount, env address, mount permission), as `kubectl get -o json`
lists. Measured: the whole one-shot command (Python start, config, plugins, every workload's
probe analysis, triage and tree; median of 5) and the in-process diagnosis alone (median of 5),
and how many workloads had their planted root cause and object heading the diagnosis.

ratio = seconds per workload of the one-shot command against the 1 s goal (lower is better).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.timing import median
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, healthy

FAULTS = ("image_not_found", "image_registry_unresolvable", "liveness_probe_wrong_port",
          "liveness_probe_wrong_protocol", "liveness_probe_timing", "readiness_probe_wrong_port",
          "container_oom_killed", "node_selector_mismatch", "insufficient_node_cpu", "service_account_missing",
          "dependency_address_invalid", "service_selector_mismatch")
SHARED = ("nodes", "storageclasses", "system_pods", "resourcequotas", "leases", "persistentvolumes")
GOAL_S = 1.0


def namespace() -> tuple[dict[str, list[dict[str, Any]]], dict[str, tuple[str, str]]]:
    """12 workloads app0..app11 in one namespace, each with one fault; and what each must show."""
    merged: dict[str, list[dict[str, Any]]] = {}
    expected = {}
    for i, cause in enumerate(FAULTS):
        obj, plant = CASES[cause]
        lists = healthy()
        plant(lists)
        renamed = json.loads(json.dumps(lists).replace("cart", f"app{i}"))
        for key, items in renamed.items():
            if key in SHARED and i:
                continue
            merged.setdefault(key, []).extend(items)
        expected[f"app{i}"] = (cause, obj.replace("cart", f"app{i}"))
    return merged, expected


def _write(directory: Path, lists: dict[str, list[dict[str, Any]]]) -> None:
    for key, items in lists.items():
        (directory / f"{key}.json").write_text(json.dumps({"kind": "List", "items": items}))


def run(quick: bool) -> dict[str, Any]:
    from agent.diagnosis.snapshot import diagnose_snapshot, report
    from agent.diagnosis.wiring import build_app
    from agent.model.config import Config

    runs = 2 if quick else 5
    lists, expected = namespace()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _write(directory, lists)
        app = build_app(Config())
        inproc = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            doc = report(diagnose_snapshot(app, directory))
            inproc.append(time.perf_counter() - started)
        heads = {w["workload"]: (w["findings"][0]["root_cause"], w["findings"][0]["object"])
                 for w in doc["workloads"] if w["findings"]}
        correct = sum(1 for name, want in expected.items() if heads.get(name) == want)
        oneshot = []
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "agent", "--config", str(directory / "none.yaml"),
                                   "diagnose", "--snapshot", str(directory), "--json"],
                                  capture_output=True, text=True, timeout=120)
            oneshot.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise RuntimeError(f"diagnose --snapshot failed: {done.stderr[-500:]}")
    per_workload = median(oneshot) / len(FAULTS)
    return {"workloads": len(FAULTS), "correct": correct, "oneshot_ms": round(median(oneshot) * 1000, 1),
            "in_process_ms": round(median(inproc[1:]) * 1000, 1),
            "per_workload_ms": round(per_workload * 1000, 1), "ratio": round(per_workload / GOAL_S, 3)}
