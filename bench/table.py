"""The printed summary: one row per figure, its measurements side by side and its ratio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _checklist(r: dict[str, Any]) -> str:
    line = f"checklist {r['checklist_ms']:.0f} ms vs hemostat diagnose {r['hemostat_ms']:.0f} ms"
    if r.get("via_daemon_ms"):
        line += f"; --server (daemon) {r['via_daemon_ms']:.0f} ms = {r['ratio_via_daemon']:.2f}"
    if r.get("python_floor_ms"):
        line += f"; one-shot Python floor {r['python_floor_ms']:.0f} ms"
    return line


def _parallel(r: dict[str, Any]) -> str:
    return (f"pass {r['pass_ms']:.0f} ms vs slowest probe {r['slowest_probe']} {r['slowest_probe_ms']:.0f} ms "
            f"(sum {r['sum_of_probes_ms']:.0f} ms)")


def _alerts(r: dict[str, Any]) -> str:
    return (f"{r['proposals']}/{r['alerts']} alerts: p50 {r['p50_ms']:.0f} / p95 {r['p95_ms']:.0f} / "
            f"p99 {r['p99_ms']:.0f} ms (floor {r['floor_ms']:.0f} ms)")


def _alert_chain(r: dict[str, Any]) -> str:
    return (f"{r['alerts']} alerts via Prometheus+Alertmanager: firing->proposal p50 "
            f"{r['firing_to_proposal_p50_ms']:.0f} ms, delivery->proposal p50 {r['delivery_to_proposal_p50_ms']:.0f} / "
            f"p95 {r.get('delivery_to_proposal_p95_ms', float('nan')):.0f} ms "
            f"(floor {r['floor_ms']:.0f} ms); failed notifications {r['notifications_failed']:.0f}")


def _scale(r: dict[str, Any]) -> str:
    rows = "; ".join(f"{s['targets']}: {s['sweep_ms_per_target']:.1f} ms, cpu {s['cpu_ms_per_target']:.1f} ms, "
                     f"+{s['rss_growth_kb_per_target']:.0f} KB" for s in r["scales"])
    fixed = r["prototype_shared_tls"]
    return (f"per target {rows}; prototype at {fixed['targets']}: {fixed['sweep_ms_per_target']:.1f} ms "
            f"({r['prototype_speedup']:.1f}x faster)")


def _logs(r: dict[str, Any]) -> str:
    return (f"{r['megabytes']:.0f} MB: hemostat {r['hemostat_mb_s']:.0f} MB/s "
            f"(re fallback {r['re_fallback_mb_s']:.0f}) vs grep {r['grep_mb_s']:.0f} MB/s")


def _fault_diagnosis(r: dict[str, Any]) -> str:
    return (f"{r['workloads']} workloads from a snapshot: one-shot {r['oneshot_ms']:.0f} ms "
            f"({r['per_workload_ms']:.0f} ms each), in process {r['in_process_ms']:.0f} ms; "
            f"root cause and object right {r['correct']}/{r['workloads']}")


def _ttm(r: dict[str, Any]) -> str:
    spans = ", ".join(f"{k} {r[f'{k}_p50_s']:g}" for k in ("rule_for", "alertmanager_wait", "diagnosis",
                                                         "decision", "rollout", "verify"))
    return (f"first failing request -> verified: p50 {r['total_p50_s']:g} s, p95 {r['total_p95_s']:g} s "
            f"over {len(r['incidents'])} incidents (p50 s: {spans})")


ROWS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "checklist": ("1 diagnosis vs checklist", _checklist),
    "parallel": ("2 parallelism overhead", _parallel),
    "alerts": ("3 alert to proposal", _alerts),
    "alert_chain": ("3b alert chain to proposal", _alert_chain),
    "scale": ("4 scale (sweep)", _scale),
    "logs": ("5 log analysis", _logs),
    "fault_diagnosis": ("6 fault diagnosis", _fault_diagnosis),
    "time_to_mitigation": ("7 time to mitigation", _ttm),
}


def table(figures: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'figure':<26} {'ratio':>8}  measured", "-" * 110]
    for name, result in figures.items():
        title, describe = ROWS[name]
        if "error" in result:
            lines.append(f"{title:<26} {'error':>8}  {result['error']}")
        elif "ratio" not in result:
            lines.append(f"{title:<26} {'absent':>8}  {'; '.join(result.get('absent', []))}")
        else:
            lines.append(f"{title:<26} {result['ratio']:>8.3f}  {describe(result)}")
            if result.get("absent"):
                lines.append(f"{'':<36}absent: {'; '.join(result['absent'])}")
    return "\n".join(lines)
