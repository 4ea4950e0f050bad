"""The `ledger` fixture: every backend, so one contract suite proves them all alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.ledger import Ledger
from agent.ledger.sqlite import SqliteLedger

LedgerFactory = Callable[[], Ledger]


def _sqlite(tmp_path: Path) -> LedgerFactory:
    path = tmp_path / "ledger.db"
    return lambda: SqliteLedger(path)


def _postgres(request: pytest.FixtureRequest) -> LedgerFactory:
    from agent.ledger.postgres import PostgresLedger

    dsn = request.getfixturevalue("pg_db")
    return lambda: PostgresLedger(dsn)


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def ledger_factory(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerFactory:
    """Opens a new connection to the same ledger each call (a second process, in effect)."""
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return _postgres(request)


@pytest.fixture
def ledger(ledger_factory: LedgerFactory) -> Iterator[Ledger]:
    ledger = ledger_factory()
    yield ledger
    ledger.close()
