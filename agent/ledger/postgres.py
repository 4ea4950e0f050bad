"""The cluster ledger on PostgreSQL (psycopg 3): the SQLite contract, shared by several replicas.

`open_ledger` builds it when the store config names PostgreSQL. Migrations are numbered and
applied at start-up inside one transaction under an advisory lock, so replicas starting together
migrate once, and a ledger newer than this Hemostat refuses to open. Each write is one transaction
that also appends its event; appending takes a transaction-level advisory lock, so `seq` order is
commit order and a reader tailing `after_seq` never skips an event that committed late. Triggers
refuse UPDATE, DELETE and TRUNCATE on events: the timeline is append-only in the database itself.

Leadership is a session-level advisory lock held on a dedicated connection, whose
application_name names the leader (`hemostat-leader:<identity>`, visible in pg_stat_activity).
The server releases it when that connection dies, so a crashed leader never blocks its successor;
and `claim_execution` (compare-and-set on the proposal's state) still runs each proposal once
if an old leader has not yet noticed it lost the lock.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from agent.ledger import pg_roles, pg_trust
from agent.ledger.base import LedgerError, ProposalRecord
from agent.ledger.pg_trust import advisory_key
from agent.ledger.sql import SqlLedger, iter_migrations
from agent.model import redact

MIGRATIONS = (
    """
    CREATE TABLE incidents (
        id text PRIMARY KEY, target text NOT NULL, title text NOT NULL, status text NOT NULL,
        severity integer NOT NULL, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        group_key text, resolved_at timestamptz, data jsonb NOT NULL DEFAULT '{}'
    );
    CREATE INDEX incidents_group ON incidents (group_key, status);
    CREATE TABLE proposals (
        id text PRIMARY KEY, incident_id text, target text NOT NULL, action text NOT NULL,
        state text NOT NULL, proposal jsonb NOT NULL, verdict jsonb NOT NULL,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, expires_at timestamptz,
        plan jsonb, claimed_by text
    );
    CREATE INDEX proposals_state ON proposals (state);
    CREATE TABLE approvals (
        proposal_id text NOT NULL, actor text NOT NULL, at timestamptz NOT NULL,
        PRIMARY KEY (proposal_id, actor)
    );
    CREATE TABLE events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL,
        type text NOT NULL, actor text NOT NULL, incident_id text, proposal_id text,
        data jsonb NOT NULL
    );
    CREATE INDEX events_incident ON events (incident_id, seq);
    CREATE INDEX events_proposal ON events (proposal_id, seq);
    CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
    CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    """,
    # v2: one open incident per target, so two replicas receiving the same alert cannot
    # open two incidents (the loser joins the winner's).
    "CREATE UNIQUE INDEX incidents_one_open ON incidents (target) WHERE status <> 'resolved';",
    # v3: heartbeats (the executing leader's, so `approve` can say whether anyone will run it).
    "CREATE TABLE heartbeats (role text PRIMARY KEY, holder text NOT NULL, at timestamptz NOT NULL);",
    # v4: who approved, as an identity source vouched for it (agent.model.identity); one
    # approval per normalised subject; reverts are approved in their own table.
    """
    ALTER TABLE approvals ADD COLUMN source text NOT NULL DEFAULT 'asserted';
    ALTER TABLE approvals ADD COLUMN subject text;
    ALTER TABLE approvals ADD COLUMN display_name text;
    ALTER TABLE approvals ADD COLUMN groups jsonb NOT NULL DEFAULT '[]';
    ALTER TABLE approvals ADD COLUMN uid text NOT NULL DEFAULT '';
    UPDATE approvals SET subject = lower(btrim(actor)), display_name = actor WHERE subject IS NULL;
    ALTER TABLE approvals ALTER COLUMN subject SET NOT NULL;
    CREATE UNIQUE INDEX approvals_one_per_subject ON approvals (proposal_id, subject);
    CREATE TABLE revert_approvals (
        proposal_id text NOT NULL, actor text NOT NULL, at timestamptz NOT NULL,
        source text NOT NULL, subject text NOT NULL, display_name text NOT NULL,
        groups jsonb NOT NULL DEFAULT '[]', uid text NOT NULL DEFAULT '',
        PRIMARY KEY (proposal_id, subject)
    );
    """,
    # v5: the events' hash chain and anchored pruning (agent/ledger/pg_trust.py).
    pg_trust.CHAIN,
    # v6: approving through the ledger as one's own login role (agent/ledger/pg_trust.py).
    pg_trust.APPROVAL_FUNCTIONS,
    # v7: no chosen seqs, no `postgres` approvals but through hemostat_approve() (pg_trust.py).
    pg_trust.EVENT_GUARD,
)
CONNECT_TIMEOUT_S = 10


MIGRATE_KEY, EVENTS_KEY, LEADER_KEY = (advisory_key(n) for n in ("migrate", "events", "leader"))


@functools.lru_cache(maxsize=256)
def _pg_params(sql: str) -> str:
    """The shared SQL uses `?` placeholders (sqlite); psycopg wants `%s` (and `%%` for `%`)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Cursor:
    """A psycopg cursor that speaks the `?` placeholders of `agent.ledger.sql`."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.raw = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.raw.execute(_pg_params(sql), params)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.raw.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.raw.fetchall()

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount

    @property
    def description(self) -> Any:
        return self.raw.description


class PostgresLedger(SqlLedger):
    """Ledger in a PostgreSQL database; safe for any number of processes and replicas."""

    guards_login_approvals = True  # only hemostat_approve() writes `postgres` approvals (EVENT_GUARD)

    _data_text = "data::text"  # the chain hashes jsonb's own text (the trigger computes it)

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._where, self._secret = _describe(dsn)
        self._lock = threading.RLock()  # one connection, shared by the daemon's worker threads
        self._lead: psycopg.Connection[Any] | None = None
        self._conn = self._connect("hemostat-ledger")
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    @property
    def where(self) -> str:
        """`postgres://host:port/db`: the ledger named without its credentials."""
        return self._where

    def _connect(self, app: str) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._dsn, autocommit=True, application_name=app,
                                   connect_timeout=CONNECT_TIMEOUT_S, options="-c TimeZone=UTC")
        except psycopg.Error as e:
            raise self._error("cannot open ledger", e, "ledger_unavailable") from None

    def _error(self, what: str, e: psycopg.Error, code: str) -> LedgerError:
        reason = redact(" ".join(str(e).split()), (self._secret,))
        return LedgerError(f"{what} {self._where}: {reason}", code=code)

    def close(self) -> None:
        with self._lock:
            if self._lead is not None:
                # Unlock before closing: the server frees a closed session's locks only when its
                # backend exits, which under load lags the close, and the next leader would wait.
                with contextlib.suppress(psycopg.Error):
                    self._lead.execute("SELECT pg_advisory_unlock(%s)", (LEADER_KEY,))
                self._lead.close()
                self._lead = None
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect("hemostat-ledger")
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield _Cursor(cur)
            except psycopg.Error as e:
                raise self._error("ledger write failed at", e, _code(e)) from None

    def _stamp(self, at: datetime) -> Any:
        return at

    def _insert_event(self, cur: Any, values: tuple[Any, ...]) -> int:
        cur.execute("SELECT pg_advisory_xact_lock(?)", (EVENTS_KEY,))  # seq order = commit order
        cur.execute("INSERT INTO events (at, type, actor, incident_id, proposal_id, data) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq", values)
        row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def _migrate(self) -> None:
        """Bring the schema up to date; with nothing to do it runs no DDL, so the daemon's role,
        which owns nothing (agent/ledger/pg_roles.py), opens a current ledger."""
        with self._tx() as cur:
            cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
            row = cur.fetchone()
            if row and row[0]:
                cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                row = cur.fetchone()
                current = int(row[0]) if row else 0
            else:
                current = 0
        if current == len(MIGRATIONS):
            return
        try:
            self._apply_migrations()
        except LedgerError as e:
            if e.code != "ledger_forbidden":
                raise
            raise LedgerError(f"ledger {self._where} is at schema version {current}, this Hemostat "
                              f"needs {len(MIGRATIONS)}, and this role may not migrate it: run "
                              "`hemostat ledger migrate` with the owner role's DSN",
                              code="ledger_needs_migration") from None

    def _apply_migrations(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATE_KEY,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                        "applied_at timestamptz NOT NULL DEFAULT now())")
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if current > len(MIGRATIONS):
                raise LedgerError(f"ledger {self._where} has schema version {current}, newer than this "
                                  f"Hemostat knows ({len(MIGRATIONS)}); upgrade Hemostat",
                                  code="ledger_too_new")
            for version, sql in iter_migrations(MIGRATIONS):
                if version > current:
                    cur.raw.execute(sql.encode())  # a script: several statements, no parameters
                    cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def grant(self, daemon: str | None, approvers: Sequence[str]) -> pg_roles.Grants:
        """Give the daemon's and approvers' roles their least privileges (run as the owner)."""
        with self._tx() as cur:
            return pg_roles.grant(cur.raw.connection, daemon, approvers)

    def schema_version(self) -> int:
        with self._tx() as cur:
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def clock(self) -> datetime:
        """The database's time: one clock for every replica (issue 23, M2)."""
        with self._tx() as cur:
            cur.execute("SELECT clock_timestamp()")
            row = cur.fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    def claim_execution(self, ref: str, actor: str, at: datetime,
                        plan: dict[str, Any]) -> ProposalRecord | None:
        """Stamped with the database's time, whatever the claimant's clock says (see `clock`)."""
        return super().claim_execution(ref, actor, self.clock(), plan)

    def try_lead(self, name: str) -> bool:
        """Lead while holding the ledger's leader lock. `name` is this candidate's identity (shown
        in pg_stat_activity), not the lock: every replica competes for the same one."""
        with self._lock:
            if self._lead is not None and self._still_connected(self._lead):
                return True
            self._lead = None
            conn = self._connect(f"hemostat-leader:{name}"[:63])
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)).fetchone()
            except psycopg.Error as e:
                conn.close()
                raise self._error("cannot take the leader lock at", e, "ledger_unavailable") from None
            if row and row[0]:
                self._lead = conn
                return True
            conn.close()
            return False

    @staticmethod
    def _still_connected(conn: psycopg.Connection[Any]) -> bool:
        """A live session still holds its advisory lock; a dead one lost it (and is closed)."""
        try:
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            conn.close()
            return False


def _describe(dsn: str) -> tuple[str, str]:
    """(`postgres://host:port/db` for messages, the password to mask); never echoes the DSN."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise LedgerError("the ledger's PostgreSQL DSN is not a valid connection string (not shown)",
                          code="ledger_config") from None
    host, port = parts.get("host") or "localhost", parts.get("port") or 5432
    where = f"postgres://{host}:{port}/{parts.get('dbname') or ''}"
    return where, str(parts.get("password") or "")


def _code(e: psycopg.Error) -> str:
    if isinstance(e, psycopg.errors.UniqueViolation):
        return "conflict"
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return "ledger_forbidden"
    if isinstance(e, psycopg.OperationalError):
        return "ledger_unavailable"
    return "ledger_write_failed"
