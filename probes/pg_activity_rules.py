"""The `pg-activity` probe's findings from one observation: pure functions of the observation's
data (saturation, long queries, idle transactions, lock chains down to the root blocker), with
onsets and what a role without pg_monitor cannot see. Split from probes/pg_activity.py, which
connects and collects.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from agent.model import Finding, Severity

_ONSET_FROM = {"lock_contention": "the longest lock wait's start", "long_running_queries": "query start",
               "idle_in_transaction": "the session's last state change"}


def with_onset(finding: Finding, collected_at: datetime) -> Finding:
    """When the trouble began: the collection time minus the longest age PostgreSQL reported
    (wait, query or idle time), so the onset does not depend on the server's clock."""
    ages = [s.get(_AGE[finding.kind]) or 0 for s in finding.facts.get("waiting") or
            finding.facts.get("sessions") or []] if finding.kind in _AGE else []
    if not ages:
        return finding
    return replace(finding, onset=collected_at - timedelta(seconds=max(ages)),
                   onset_from=_ONSET_FROM[finding.kind])


def blind_spot(data: dict[str, Any]) -> str | None:
    hidden = data.get("hidden") or {}
    if not hidden.get("sessions"):
        return None
    return (f"role {data.get('role')} cannot see {hidden['sessions']} session(s) of "
            f"{', '.join(hidden['users'])}: their state, queries, durations and lock waits are "
            f"hidden (<insufficient privilege>); grant pg_monitor to {data.get('role')}")


def _withblind_spot(lines: list[str], data: dict[str, Any]) -> tuple[str, ...]:
    spot = blind_spot(data)
    return tuple([*lines, spot] if spot else lines)


def refused(data: dict[str, Any], now: datetime, probe: str) -> Finding:
    return Finding(
        kind="db_connections_saturated", subject=f"postgres:{data.get('database')}",
        severity=Severity.SEV2, observed_at=now, probe=probe,
        summary=f"PostgreSQL at {data['server']} refused Hemostat's connection: all slots are taken",
        evidence=(data["refused"],), facts={"refused": True, "server": data["server"]})


def saturated(data: dict[str, Any], ratio_limit: float, now: datetime, probe: str) -> Finding | None:
    usable = max(1, data["max_connections"] - data["reserved"])
    ratio = data["in_use"] / usable
    if ratio < ratio_limit:
        return None
    crowd = ", ".join(f"{k} {v}" for k, v in data["by_user"].items())
    return Finding(
        kind="db_connections_saturated", subject=f"postgres:{data['database']}", probe=probe,
        severity=Severity.SEV2 if ratio >= 1 else Severity.SEV3, observed_at=now,
        summary=f"{data['in_use']}/{usable} connection slots in use ({ratio:.0%}, threshold "
                f"{ratio_limit:.0%}); by user: {crowd}",
        evidence=_withblind_spot([
            f"max_connections {data['max_connections']}, {data['reserved']} reserved for superusers",
            *(f"by {what}: " + ", ".join(f"{k} {v}" for k, v in data[f"by_{what}"].items())
              for what in ("database", "user", "application", "state"))], data),
        facts={"in_use": data["in_use"], "usable": usable, "ratio": round(ratio, 3),
               "max_connections": data["max_connections"], "by_database": data["by_database"],
               "by_user": data["by_user"], "by_application": data["by_application"],
               "by_state": data["by_state"], "hidden_sessions": data["hidden"]["sessions"]})


def per_db(sessions: list[dict[str, Any]], kind: str, threshold: float, data: dict[str, Any],
            now: datetime, probe: str) -> list[Finding | None]:
    dbs = sorted({s["db"] for s in sessions})
    build = _lock_finding if kind == "lock_contention" else _session_finding
    return [build([s for s in sessions if s["db"] == db], kind, threshold, data, now, probe) for db in dbs]


_AGE = {"long_running_queries": "query_s", "idle_in_transaction": "state_s", "lock_contention": "wait_s"}
_WHAT = {"long_running_queries": "queries running", "idle_in_transaction": "sessions idle in transaction",
         "lock_contention": "sessions waiting on a lock"}


def _line(s: dict[str, Any]) -> str:
    return (f"pid {s['pid']} {s['user']} ({s['app'] or '-'}) {s['state']} {s['state_s'] or 0:.0f}s, "
            f"query {s['query_s'] or 0:.0f}s, transaction {s['xact_s'] or 0:.0f}s: {s['query']}")


def _facts(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("pid", "user", "app", "state", "superuser", "backend_start", "xact_start", "query_start",
            "query_s", "xact_s", "state_s", "wait_s", "blocked_by", "query")
    return {k: s.get(k) for k in keys}


def _total(kind: str, db: str, shown: int, data: dict[str, Any]) -> tuple[int, str]:
    """How many there were (counted before the observation's cut), and ' (N shown)' if fewer are."""
    total = max(shown, int(((data.get("over") or {}).get(kind) or {}).get(db, 0)))
    return total, (f" ({shown} shown)" if total > shown else "")


def _session_finding(sessions: list[dict[str, Any]], kind: str, threshold: float, data: dict[str, Any],
                     now: datetime, probe: str) -> Finding:
    age = _AGE[kind]
    worst = sorted(sessions, key=lambda s: -(s[age] or 0))
    top = worst[0]
    total, shown = _total(kind, top["db"], len(worst), data)
    return Finding(
        kind=kind, subject=f"postgres:{top['db']}", severity=Severity.SEV3, observed_at=now, probe=probe,
        summary=f"{total} {_WHAT[kind]} longer than {threshold:g}s in {top['db']}{shown}; worst pid "
                f"{top['pid']} ({top['user']}) at {top[age]:.0f}s",
        evidence=_withblind_spot([_line(s) for s in worst[:5]], data),
        facts={"database": top["db"], "threshold_s": threshold, "count": total,
               "pids": [s["pid"] for s in worst],
               "users": sorted({s["user"] for s in worst}), "longest_s": round(top[age], 1),
               "sessions": [_facts(s) for s in worst[:20]],
               "hidden_sessions": data["hidden"]["sessions"]})


def root_blockers(pid: int, by_pid: dict[int, dict[str, Any]]) -> list[int]:
    """The pids at the top of `pid`'s blocking chains: blocked by nobody (or not visible)."""
    stack, seen, roots = list(by_pid[pid]["blocked_by"]), {pid}, set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        above = (by_pid.get(current) or {}).get("blocked_by") or []
        if not above:
            roots.add(current)
        stack.extend(above)
    return sorted(roots)


def _chain(pid: int, by_pid: dict[int, dict[str, Any]]) -> str:
    path, current = [pid], pid
    while (above := (by_pid.get(current) or {}).get("blocked_by")) and above[0] not in path:
        current = above[0]
        path.append(current)
    return " waits for ".join(str(p) for p in path)


def _root_line(root: int, blocked: list[int], by_pid: dict[int, dict[str, Any]]) -> str:
    s = by_pid.get(root)
    who = _line(s) if s else f"pid {root} (not visible to this role)"
    return f"root blocker {who} — blocks {len(blocked)}: {', '.join(map(str, blocked[:10]))}"


def _lock_finding(waiting: list[dict[str, Any]], kind: str, threshold: float, data: dict[str, Any],
                  now: datetime, probe: str) -> Finding:
    by_pid = {s["pid"]: s for s in data["sessions"]}
    blocks: dict[int, list[int]] = {}
    for s in waiting:
        for root in root_blockers(s["pid"], by_pid):
            blocks.setdefault(root, []).append(s["pid"])
    roots = sorted(blocks, key=lambda r: -len(blocks[r]))
    db, longest = waiting[0]["db"], max(s["wait_s"] for s in waiting)
    total, shown = _total(kind, db, len(waiting), data)
    return Finding(
        kind=kind, subject=f"postgres:{db}", severity=Severity.SEV2, observed_at=now, probe=probe,
        summary=f"{total} {_WHAT[kind]} longer than {threshold:g}s in {db}{shown} (longest "
                f"{longest:.0f}s); root blocker(s): {', '.join(map(str, roots)) or 'none visible'}",
        evidence=_withblind_spot([*(_root_line(r, blocks[r], by_pid) for r in roots[:3]),
                                   *(f"chain: {_chain(s['pid'], by_pid)}" for s in waiting[:3])], data),
        facts={"database": db, "threshold_s": threshold, "count": total, "pids": [s["pid"] for s in waiting],
               "root_pids": roots, "users": sorted({s["user"] for s in waiting}),
               "waiting": [_facts(s) for s in waiting[:20]],
               "root_blockers": [{**_facts(by_pid.get(r, {"pid": r})), "blocks": len(blocks[r])}
                                 for r in roots[:10]],
               "hidden_sessions": data["hidden"]["sessions"]})
