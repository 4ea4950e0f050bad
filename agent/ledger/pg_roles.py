"""Least-privilege roles on the PostgreSQL ledger: the owner migrates, the daemon appends.

`hemostat ledger migrate` connects as the owner role (which owns every table, trigger and
function), applies the migrations, then calls `grant`, so the daemon's role:
- owns nothing, so it cannot ALTER, DISABLE or DROP a trigger, nor replace a function;
- may SELECT and INSERT events and approvals (never UPDATE, DELETE or TRUNCATE them), and only
  read the prune anchors (pruning is the owner's: `hemostat ledger prune` with the owner's DSN);
- may SELECT, INSERT and UPDATE the records the events project onto (incidents, proposals...);
- may create nothing in the schema.
Approvers' roles get CONNECT, USAGE on the schema and EXECUTE on the approval functions, nothing
else. Re-run after every upgrade: tables added by new migrations are granted the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from agent.ledger.base import LedgerError

APPEND_ONLY = frozenset({"events", "approvals", "revert_approvals"})
READ_ONLY = frozenset({"schema_version", "ledger_anchors"})  # anchors: only the owner prunes
APPROVER_FUNCTIONS = ("hemostat_approve(text)", "hemostat_reject(text, text)")


@dataclass(frozen=True)
class Grants:
    """What `grant` gave, for the command's report."""

    schema: str
    daemon: str | None
    approvers: tuple[str, ...]
    tables: dict[str, str]


def grant(conn: Any, daemon: str | None, approvers: Sequence[str]) -> Grants:
    """Grant `daemon` and `approvers` exactly what they need (idempotent; run as the owner)."""
    schema, owner, db = conn.execute(
        "SELECT current_schema(), current_user, current_database()").fetchone()
    for role in (daemon, *approvers):
        if role is not None:
            _check_role(conn, role, owner)
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {} FROM PUBLIC").format(
        sql.Identifier(schema)))
    tables: dict[str, str] = {}
    if daemon is not None:
        _connect_and_use(conn, daemon, db, schema)
        tables = _grant_tables(conn, daemon, schema)
    for role in approvers:
        _connect_and_use(conn, role, db, schema)
        for function in _existing(conn, APPROVER_FUNCTIONS):
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                sql.SQL(function), sql.Identifier(role)))
    return Grants(schema, daemon, tuple(approvers), tables)


def _check_role(conn: Any, role: str, owner: str) -> None:
    row = conn.execute("SELECT rolsuper, pg_has_role(oid, (SELECT oid FROM pg_roles WHERE rolname = "
                       "current_user), 'MEMBER') FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        raise LedgerError(f"PostgreSQL role {role!r} does not exist: create it first "
                          "(docs/install.md, 'PostgreSQL roles')", code="ledger_config")
    if role == owner or row[0] or row[1]:
        raise LedgerError(f"PostgreSQL role {role!r} is the owner {owner!r}, a member of it, or a "
                          "superuser: it could disable the ledger's triggers. Give the daemon and "
                          "approvers roles of their own", code="ledger_config")


def _connect_and_use(conn: Any, role: str, db: str, schema: str) -> None:
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(db), sql.Identifier(role)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
        sql.Identifier(schema), sql.Identifier(role)))


def _grant_tables(conn: Any, daemon: str, schema: str) -> dict[str, str]:
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner = current_user "
        "ORDER BY tablename", (schema,)).fetchall()]
    granted = {}
    for table in tables:
        privileges = ("SELECT" if table in READ_ONLY else "SELECT, INSERT" if table in APPEND_ONLY
                      else "SELECT, INSERT, UPDATE")
        name = sql.Identifier(schema, table)
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, sql.Identifier(daemon)))
        conn.execute(sql.SQL("GRANT " + privileges + " ON TABLE {} TO {}").format(
            name, sql.Identifier(daemon)))
        granted[table] = privileges
    conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
        sql.Identifier(schema), sql.Identifier(daemon)))
    return granted


def _existing(conn: Any, signatures: Sequence[str]) -> list[str]:
    return [s for s in signatures
            if conn.execute("SELECT to_regprocedure(%s)", (s,)).fetchone()[0] is not None]
