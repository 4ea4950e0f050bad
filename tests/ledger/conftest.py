"""The `ledger` fixture: every backend, so one contract suite proves them all alike."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from agent.ledger import Ledger
from agent.ledger.sqlite import SqliteLedger
from tests.services.postgres import PgServer

LedgerFactory = Callable[[], Ledger]


def _sqlite(tmp_path: Path) -> LedgerFactory:
    path = tmp_path / "ledger.db"

    def as_owner(*statements: str) -> None:
        """Whoever holds the file can drop the append-only triggers and write anything."""
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        for statement in statements:
            conn.execute(statement)
        conn.close()

    factory = lambda: SqliteLedger(path)  # noqa: E731
    factory.as_owner = as_owner  # type: ignore[attr-defined]
    return factory


def _postgres(request: pytest.FixtureRequest) -> LedgerFactory:
    import psycopg

    from agent.ledger.postgres import PostgresLedger

    dsn = request.getfixturevalue("pg_db")

    def as_owner(*statements: str) -> None:
        """The owner (here the superuser) can lift every trigger for a moment."""
        with psycopg.connect(dsn) as conn:
            conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("ALTER TABLE events ENABLE TRIGGER USER")

    factory = lambda: PostgresLedger(dsn)  # noqa: E731
    factory.as_owner = as_owner  # type: ignore[attr-defined]
    return factory


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def ledger_factory(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerFactory:
    """Opens a new connection to the same ledger each call (a second process, in effect)."""
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return _postgres(request)


@pytest.fixture
def as_owner(ledger_factory: LedgerFactory) -> Callable[..., None]:
    """Run raw SQL on the ledger as its owner, with the append-only triggers lifted: a tamper."""
    return ledger_factory.as_owner  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def ledger(ledger_factory: LedgerFactory) -> Iterator[Ledger]:
    ledger = ledger_factory()
    yield ledger
    ledger.close()


# -- split PostgreSQL roles (docs/install.md): owner, daemon, approvers -------------------------

@dataclass
class Roles:
    owner: str
    owner_dsn: str
    daemon: str
    daemon_dsn: str
    approvers: str
    db: str
    migrated: str  # what `hemostat ledger migrate` printed


def make_roles(pg_server: PgServer, db: str) -> Roles:
    """An owner that owns the database, a daemon role and an approvers group, none superusers."""
    tag = secrets.token_hex(4)
    owner_dsn = pg_server.create_role(f"owner_{tag}", "owner-pw", dbname=db)
    daemon_dsn = pg_server.create_role(f"daemon_{tag}", "daemon-pw", dbname=db)
    pg_server.create_role(f"approvers_{tag}", "unused", dbname=db)
    with pg_server.connect(db) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(db), sql.Identifier(f"owner_{tag}")))
    return Roles(f"owner_{tag}", owner_dsn, f"daemon_{tag}", daemon_dsn, f"approvers_{tag}", db, "")


def _migrate(roles: Roles, tmp_path: Path) -> str:
    """`hemostat ledger migrate` as a real process, the owner's DSN in its environment."""
    config = tmp_path / "hemostat.yaml"  # migrate needs only the owner DSN; the config is empty
    config.write_text("targets: []\n")
    env = {**os.environ, "HEMOSTAT_LEDGER_OWNER_DSN": roles.owner_dsn, "HEMOSTAT_CONFIG": str(config)}
    done = subprocess.run([str(Path(sys.executable).parent / "hemostat"), "ledger", "migrate",
                           "--daemon-role", roles.daemon, "--approver-role", roles.approvers],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "owner-pw" not in done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def split(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roles]:
    """One database migrated by its owner for this module's tests (each leaves it as it was)."""
    db = f"t_roles_{secrets.token_hex(4)}"
    with pg_server.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    roles = make_roles(pg_server, db)
    roles.migrated = _migrate(roles, tmp_path_factory.mktemp("roles"))
    yield roles
    with pg_server.connect() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
