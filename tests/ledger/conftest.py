"""The `ledger` fixture: every backend, so one contract suite proves them all alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.ledger import Ledger
from agent.ledger.sqlite import SqliteLedger

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
