"""Smoke test for the benchmarks: `python -m bench --quick --only scale,parallel` produces sane
results. It checks that output is produced and makes sense, never how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmarks_write_sane_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "scale,parallel", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["machine"]["cpus"] >= 1
    parallel, scale = results["figures"]["parallel"], results["figures"]["scale"]
    assert parallel["ratio"] > 0 and parallel["slowest_probe"] in parallel["probes_ms"]
    assert parallel["pass_ms"] <= parallel["sum_of_probes_ms"]  # the probes did run concurrently
    assert [row["targets"] for row in scale["scales"]] == [10, 50]
    for row in scale["scales"]:
        assert row["sweep_s"] > 0 and row["cpu_s"] > 0 and row["peak_rss_mb"] > 0
    assert "2 parallelism overhead" in done.stdout and "4 scale (sweep)" in done.stdout


def test_fault_diagnosis_bench_diagnoses_every_planted_fault(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "fault_diagnosis", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    figure = json.loads(out.read_text())["figures"]["fault_diagnosis"]
    assert figure["correct"] == figure["workloads"] == 12
    assert figure["oneshot_ms"] > figure["in_process_ms"] > 0
    assert "6 fault diagnosis" in done.stdout
