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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.model import (
    Finding,
    HemostatError,
    Observation,
    PermanentError,
    PostgresSpec,
    TargetSpec,
    TemporaryError,
    Thresholds,
    redact,
)
from agent.model.context import ProbeContext
from agent.model.redact import mask_query
from probes.pg_activity_rules import blind_spot, per_db, refused, saturated, with_onset

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
    return {**data, "blind_spot": blind_spot(data)}


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
            return [refused(data, now, self.name)]
        found = [saturated(data, t.connections_saturated_ratio, now, self.name)]
        limits = {"long_running_queries": t.long_query_seconds, "lock_contention": t.lock_wait_seconds,
                  "idle_in_transaction": t.idle_in_transaction_seconds}
        for kind, sessions in over_thresholds(data.get("sessions", []), t).items():
            found += per_db(sessions, kind, limits[kind], data, now, self.name)
        return [with_onset(f, observation.collected_at) for f in found if f is not None]
