"""Probe `pg-activity`: what the database's sessions are doing, from `pg_stat_activity`,
`pg_locks` and `pg_blocking_pids()`; the playbook's "who is holding the database" queries.

`collect` runs two read-only statements over one short connection (psycopg 3, async) tagged with
`PostgresSpec.application_name`, bounded by `connect_timeout` and `statement_timeout` and guarded by
the breaker `postgres:<host>:<port>`. It counts every client connection (per database, user,
application, state) and keeps the detail of the sessions that matter: active, idle in
transaction, waiting on a lock, or blocking someone. Query text is masked (literals become `?`,
comments dropped) and truncated before it leaves `collect`. `analyze` (pure) turns that into
`db_connections_saturated`, `long_running_queries`, `lock_contention` (with the chain down to each
root blocker) and `idle_in_transaction`, subject `postgres:<database>`.

Meant for a least-privilege role with `pg_monitor`. Without it PostgreSQL hides other roles'
sessions (`<insufficient privilege>`); the observation and every finding then say how many
sessions, of which roles, could not be seen. The password never appears in a message.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.model import (
    Finding,
    HemostatError,
    Observation,
    PermanentError,
    PostgresSpec,
    Severity,
    TargetSpec,
    TemporaryError,
    Thresholds,
    redact,
)
from agent.model.context import ProbeContext
from agent.model.redact import mask_query

if TYPE_CHECKING:
    import psycopg

QUERY_CHARS = 200  # masked query text kept per session
MAX_SESSIONS = 200  # detailed sessions kept per observation, the longest-running first
TOP = 8  # entries kept in each per-database/user/application breakdown
HIDDEN = "<insufficient privilege>"
PINNED = "-c TimeZone=UTC -c search_path=pg_catalog"  # stable timestamps; no catalog shadowing

SETTINGS_SQL = """
SELECT current_database() AS database, current_user AS role,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + COALESCE(NULLIF(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
       current_setting('server_version') AS server_version,
       pg_has_role(current_user, 'pg_read_all_stats', 'member') AS sees_all
"""
SESSIONS_SQL = """
WITH waits AS (SELECT pid, min(waitstart) AS since FROM pg_catalog.pg_locks WHERE NOT granted GROUP BY pid)
SELECT a.pid, a.datname AS db, a.usename AS user, a.application_name AS app, a.state,
       COALESCE(r.rolsuper, false) AS superuser, a.pid = pg_backend_pid() AS self,
       a.query = %(hidden)s AS hidden, a.wait_event_type AS wait,
       a.backend_start::text AS backend_start, a.xact_start::text AS xact_start,
       a.query_start::text AS query_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_s,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_s,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_s,
       CASE WHEN w.pid IS NOT NULL
            THEN extract(epoch FROM clock_timestamp() - COALESCE(w.since, a.state_change))::float8
       END AS wait_s,
       CASE WHEN w.pid IS NULL THEN '{}'::int[] ELSE pg_blocking_pids(a.pid) END AS blocked_by,
       a.query
FROM pg_catalog.pg_stat_activity a
LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
LEFT JOIN waits w ON w.pid = a.pid
WHERE a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.datname IS NOT NULL)
"""

# -- connecting ----------------------------------------------------------------------------------
# psycopg is imported where it is used: it costs ~40 ms of CPU, which a one-shot `hemostat
# diagnose` pays in a worker thread while its other probes wait on the network (`_psycopg`).
PSYCOPG_MODULES = ("psycopg", "psycopg.conninfo", "psycopg.rows")


def _import_psycopg() -> None:
    for name in PSYCOPG_MODULES:
        importlib.import_module(name)


async def _psycopg() -> None:
    if not all(name in sys.modules for name in PSYCOPG_MODULES):
        await asyncio.to_thread(_import_psycopg)


def dsn_parts(spec: PostgresSpec) -> tuple[str, dict[str, Any]]:
    """(DSN, its parsed parts). A malformed DSN is named by reference only: it holds the password."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    dsn = spec.dsn.resolve()
    try:
        return dsn, conninfo_to_dict(dsn)
    except psycopg.Error:
        raise PermanentError(f"the PostgreSQL DSN in {spec.dsn.describe()} is not a valid connection "
                             "string (not shown: it may hold the password)", code="pg_dsn_invalid") from None


def address(parts: dict[str, Any]) -> str:
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


def translate(e: psycopg.Error, parts: dict[str, Any], spec: PostgresSpec) -> HemostatError:
    """A psycopg error as a HemostatError with a stable code; the password masked out."""
    import psycopg

    where, role = address(parts), parts.get("user") or "?"
    text = str(e).lower()
    reason = redact(" ".join(str(e).split()), (str(parts.get("password") or ""),))
    if isinstance(e, psycopg.errors.QueryCanceled):
        return TemporaryError(f"PostgreSQL at {where} did not answer within statement_timeout "
                              f"{spec.statement_timeout_ms} ms", delay=30, code="pg_timeout")
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return PermanentError(f"role {role} lacks a privilege on {where}: {reason}", code="pg_forbidden")
    if "authentication failed" in text or "pg_hba.conf" in text or (
            "role" in text and "does not exist" in text):
        return PermanentError(f"PostgreSQL at {where} refused role {role}: {reason}", code="pg_auth_failed")
    if "database" in text and "does not exist" in text:
        return PermanentError(f"PostgreSQL at {where}: {reason}", code="pg_database_missing")
    if "too many clients" in text or "connection slots are reserved" in text:
        return TemporaryError(f"PostgreSQL at {where} refused a new connection: all slots are taken",
                              delay=15, code="pg_too_many_connections")
    if "timeout expired" in text:
        reason = f"no answer within {spec.connect_timeout_s:g}s"
    if isinstance(e, psycopg.OperationalError):
        return TemporaryError(f"PostgreSQL at {where} is unreachable: {reason}", delay=15,
                              code="pg_unreachable")
    return TemporaryError(f"PostgreSQL at {where} failed: {reason}", code="pg_error")


async def connect(spec: PostgresSpec, dsn: str) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection tagged with Hemostat's application_name, bounded by the spec."""
    import psycopg

    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=max(2, round(spec.connect_timeout_s)),
        application_name=spec.application_name,
        options=f"-c statement_timeout={spec.statement_timeout_ms} {PINNED}")


# -- collecting ----------------------------------------------------------------------------------
async def _read(spec: PostgresSpec, dsn: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from psycopg.rows import dict_row

    async with await connect(spec, dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SETTINGS_SQL)
        settings = await cur.fetchone()
        await cur.execute(SESSIONS_SQL, {"hidden": HIDDEN})
        return dict(settings or {}), list(await cur.fetchall())


def _breakdown(values: Iterable[str | None]) -> dict[str, int]:
    return dict(Counter(v or "-" for v in values).most_common(TOP))


def _interesting(row: dict[str, Any], blockers: set[int]) -> bool:
    return not row["hidden"] and not row["self"] and (
        row["state"] not in (None, "idle") or row["pid"] in blockers)


def _summarize(settings: dict[str, Any], rows: list[dict[str, Any]], spec: PostgresSpec,
               t: Thresholds) -> dict[str, Any]:
    blockers = {pid for row in rows for pid in row["blocked_by"]}
    hidden = [row for row in rows if row["hidden"]]
    detail = sorted((r for r in rows if _interesting(r, blockers)), key=lambda r: -(r["xact_s"] or 0))
    for row in detail:
        row["query"] = mask_query(row["query"], QUERY_CHARS)
        row["ours"] = row["app"] == spec.application_name
        row["blocked_by"] = list(row["blocked_by"])
    return {
        **settings, "in_use": len(rows),
        "by_database": _breakdown(r["db"] for r in rows), "by_user": _breakdown(r["user"] for r in rows),
        "by_application": _breakdown(r["app"] for r in rows),
        "by_state": _breakdown("hidden" if r["hidden"] else r["state"] for r in rows),
        "hidden": {"sessions": len(hidden), "users": sorted({r["user"] or "-" for r in hidden})},
        "sessions": [{k: v for k, v in r.items() if k not in ("hidden", "self")}
                     for r in detail[:MAX_SESSIONS]],
        "sessions_omitted": max(0, len(detail) - MAX_SESSIONS),
        "over": _counts(detail, t),  # counted before the cut: "1000 idle", not "200"
    }


def over_thresholds(sessions: list[dict[str, Any]], t: Thresholds) -> dict[str, list[dict[str, Any]]]:
    """The sessions (not Hemostat's own) past each finding's threshold, by finding kind."""
    ours = [s for s in sessions if not s.get("ours")]
    return {
        # lock waiters are victims, not culprits: not long queries
        "long_running_queries": [s for s in ours if s["state"] == "active" and not s["blocked_by"]
                                 and (s["query_s"] or 0) > t.long_query_seconds],
        "idle_in_transaction": [s for s in ours if (s["state"] or "").startswith("idle in transaction")
                                and (s["state_s"] or 0) > t.idle_in_transaction_seconds],
        "lock_contention": [s for s in ours if s["blocked_by"] and (s["wait_s"] or 0) > t.lock_wait_seconds],
    }


def _counts(sessions: list[dict[str, Any]], t: Thresholds) -> dict[str, dict[str, int]]:
    return {kind: dict(Counter(s["db"] for s in found))
            for kind, found in over_thresholds(sessions, t).items()}


def shape(server: str, settings: dict[str, Any], rows: list[dict[str, Any]],
          spec: PostgresSpec, thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The observation from the two statements' rows."""
    data = {"server": server, **_summarize(settings, rows, spec, thresholds or Thresholds())}
    return {**data, "blind_spot": _blind_spot(data)}


class PgActivityProbe:
    name = "pg-activity"
    summary = "PostgreSQL sessions: connection use, long queries, lock chains, idle transactions"

    def applies_to(self, target: TargetSpec) -> bool:
        return target.postgres is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        spec = target.postgres
        if spec is None:
            raise PermanentError(f"target {target.name} has no postgres configured", code="pg_unconfigured")
        await _psycopg()
        import psycopg

        dsn, parts = dsn_parts(spec)
        try:
            with ctx.breakers.guard(f"postgres:{address(parts)}"):
                settings, rows = await _read(spec, dsn)
        except psycopg.Error as e:
            error = translate(e, parts, spec)
            if error.code != "pg_too_many_connections":
                raise error from None
            return {"database": parts.get("dbname"), "server": address(parts), "refused": str(error)}
        return shape(address(parts), settings, rows, spec, target.thresholds)

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data, t = observation.data, target.thresholds
        if "refused" in data:
            return [_refused(data, now, self.name)]
        found = [_saturated(data, t.connections_saturated_ratio, now, self.name)]
        limits = {"long_running_queries": t.long_query_seconds, "lock_contention": t.lock_wait_seconds,
                  "idle_in_transaction": t.idle_in_transaction_seconds}
        for kind, sessions in over_thresholds(data.get("sessions", []), t).items():
            found += _per_db(sessions, kind, limits[kind], data, now, self.name)
        return [_with_onset(f, observation.collected_at) for f in found if f is not None]


# -- analyzing (pure) ----------------------------------------------------------------------------
_ONSET_FROM = {"lock_contention": "the longest lock wait's start", "long_running_queries": "query start",
               "idle_in_transaction": "the session's last state change"}


def _with_onset(finding: Finding, collected_at: datetime) -> Finding:
    """When the trouble began: the collection time minus the longest age PostgreSQL reported
    (wait, query or idle time), so the onset does not depend on the server's clock."""
    ages = [s.get(_AGE[finding.kind]) or 0 for s in finding.facts.get("waiting") or
            finding.facts.get("sessions") or []] if finding.kind in _AGE else []
    if not ages:
        return finding
    return replace(finding, onset=collected_at - timedelta(seconds=max(ages)),
                   onset_from=_ONSET_FROM[finding.kind])


def _blind_spot(data: dict[str, Any]) -> str | None:
    hidden = data.get("hidden") or {}
    if not hidden.get("sessions"):
        return None
    return (f"role {data.get('role')} cannot see {hidden['sessions']} session(s) of "
            f"{', '.join(hidden['users'])}: their state, queries, durations and lock waits are "
            f"hidden (<insufficient privilege>); grant pg_monitor to {data.get('role')}")


def _with_blind_spot(lines: list[str], data: dict[str, Any]) -> tuple[str, ...]:
    spot = _blind_spot(data)
    return tuple([*lines, spot] if spot else lines)


def _refused(data: dict[str, Any], now: datetime, probe: str) -> Finding:
    return Finding(
        kind="db_connections_saturated", subject=f"postgres:{data.get('database')}",
        severity=Severity.SEV2, observed_at=now, probe=probe,
        summary=f"PostgreSQL at {data['server']} refused Hemostat's connection: all slots are taken",
        evidence=(data["refused"],), facts={"refused": True, "server": data["server"]})


def _saturated(data: dict[str, Any], ratio_limit: float, now: datetime, probe: str) -> Finding | None:
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
        evidence=_with_blind_spot([
            f"max_connections {data['max_connections']}, {data['reserved']} reserved for superusers",
            *(f"by {what}: " + ", ".join(f"{k} {v}" for k, v in data[f"by_{what}"].items())
              for what in ("database", "user", "application", "state"))], data),
        facts={"in_use": data["in_use"], "usable": usable, "ratio": round(ratio, 3),
               "max_connections": data["max_connections"], "by_database": data["by_database"],
               "by_user": data["by_user"], "by_application": data["by_application"],
               "by_state": data["by_state"], "hidden_sessions": data["hidden"]["sessions"]})


def _per_db(sessions: list[dict[str, Any]], kind: str, threshold: float, data: dict[str, Any],
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
        evidence=_with_blind_spot([_line(s) for s in worst[:5]], data),
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
        evidence=_with_blind_spot([*(_root_line(r, blocks[r], by_pid) for r in roots[:3]),
                                   *(f"chain: {_chain(s['pid'], by_pid)}" for s in waiting[:3])], data),
        facts={"database": db, "threshold_s": threshold, "count": total, "pids": [s["pid"] for s in waiting],
               "root_pids": roots, "users": sorted({s["user"] for s in waiting}),
               "waiting": [_facts(s) for s in waiting[:20]],
               "root_blockers": [{**_facts(by_pid.get(r, {"pid": r})), "blocks": len(blocks[r])}
                                 for r in roots[:10]],
               "hidden_sessions": data["hidden"]["sessions"]})
