"""PostgreSQL plumbing for `kill-queries`: the session queries, one guarded connection per
action step, and psycopg errors turned into Hemostat errors with stable codes (password masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.model import HemostatError, PermanentError, PostgresSpec, TargetSpec, TemporaryError, redact
from agent.model.context import ActionContext

if TYPE_CHECKING:
    import psycopg
# psycopg itself is imported where it is used: every `hemostat` command loads the actions, and
# psycopg costs ~40 ms of CPU to import.

PINNED = "-c TimeZone=UTC -c search_path=pg_catalog"  # stable timestamps; no catalog shadowing
SESSIONS_SQL = """
WITH waits AS (SELECT pid, min(waitstart) AS since FROM pg_catalog.pg_locks WHERE NOT granted GROUP BY pid)
SELECT a.pid, a.datname AS db, a.usename AS user, a.application_name AS app, a.state,
       a.backend_type, COALESCE(r.rolsuper, false) AS superuser, a.pid = pg_backend_pid() AS self,
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
"""
LIVE_SQL = """
SELECT pid, backend_start::text AS backend_start, xact_start::text AS xact_start,
       query_start::text AS query_start, state
FROM pg_catalog.pg_stat_activity WHERE pid = ANY(%s)
"""
SIGNAL_SQL = """
SELECT u AS user, r.rolsuper OR pg_has_role(current_user, 'pg_signal_backend', 'member')
       OR pg_has_role(current_user, u, 'member') AS allowed
FROM unnest(%s::text[]) AS u, pg_catalog.pg_roles r WHERE r.rolname = current_user
"""
Row = dict[str, Any]


def spec_of(target: TargetSpec) -> PostgresSpec:
    if target.postgres is None:
        raise PermanentError(f"target {target.name} has no postgres configured", code="pg_unconfigured")
    return target.postgres


def translate(e: psycopg.Error, parts: dict[str, Any], spec: PostgresSpec) -> HemostatError:
    import psycopg

    where, text = f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}", str(e).lower()
    reason = redact(" ".join(str(e).split()), (str(parts.get("password") or ""),))
    if isinstance(e, psycopg.errors.QueryCanceled):
        return TemporaryError(f"PostgreSQL at {where} did not answer within statement_timeout "
                              f"{spec.statement_timeout_ms} ms", delay=30, code="pg_timeout")
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return PermanentError(f"PostgreSQL at {where}: {reason}", code="pg_forbidden")
    if "authentication failed" in text or "pg_hba.conf" in text or "does not exist" in text:
        return PermanentError(f"PostgreSQL at {where} refused the connection: {reason}",
                              code="pg_auth_failed")
    return TemporaryError(f"PostgreSQL at {where} is unreachable: {reason}", delay=15,
                          code="pg_unreachable")


class Db:
    """One guarded connection to the target's database, errors translated, password masked."""

    def __init__(self, ctx: ActionContext) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        self.spec, self.ctx = spec_of(ctx.target), ctx
        self.dsn = self.spec.dsn.resolve()
        try:
            self.parts = conninfo_to_dict(self.dsn)
        except psycopg.Error:
            raise PermanentError(f"the PostgreSQL DSN in {self.spec.dsn.describe()} is not a valid "
                                 "connection string (not shown)", code="pg_dsn_invalid") from None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Db:
        import psycopg

        self.conn = await self._guarded(psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=max(2, round(self.spec.connect_timeout_s)),
            application_name=self.spec.application_name,
            options=f"-c statement_timeout={self.spec.statement_timeout_ms} {PINNED}"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def _guarded(self, pending: Any) -> Any:
        import psycopg

        key = f"postgres:{self.parts.get('host') or 'localhost'}:{self.parts.get('port') or 5432}"
        with self.ctx.breakers.guard(key):
            try:
                return await pending
            except psycopg.Error as e:
                raise translate(e, self.parts, self.spec) from None

    async def rows(self, query: str, params: Any = None) -> list[Row]:
        from psycopg.rows import dict_row

        assert self.conn is not None

        async def run() -> list[Row]:
            assert self.conn is not None
            async with self.conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                return list(await cur.fetchall())
        result: list[Row] = await self._guarded(run())
        return result


SIGNAL_ONE_SQL = """
SELECT {fn}(pid) AS sent FROM pg_catalog.pg_stat_activity
WHERE pid = %(pid)s AND backend_start::text = %(backend_start)s AND CASE
  WHEN %(by_query)s THEN state = 'active' AND query_start::text = %(query_start)s
  ELSE xact_start::text = %(xact_start)s END
"""
