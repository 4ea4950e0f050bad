"""The ledger: append-only events plus the incident and proposal records they project onto.

`open_ledger(store_config)` picks the backend: embedded SQLite by default, PostgreSQL when the
config gives a DSN. Both pass the same contract tests (tests/ledger/test_ledger_contract.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.ledger.base import (
    Event,
    IncidentRecord,
    Ledger,
    LedgerError,
    ProposalRecord,
    TransitionError,
)

if TYPE_CHECKING:
    from agent.model.config import StoreConfig

__all__ = [
    "Event",
    "IncidentRecord",
    "Ledger",
    "LedgerError",
    "ProposalRecord",
    "TransitionError",
    "open_ledger",
]


def open_ledger(store: StoreConfig) -> Ledger:
    """Open (and migrate) the configured ledger. psycopg is imported only for PostgreSQL."""
    if store.backend == "postgres":
        from agent.ledger.postgres import PostgresLedger

        assert store.dsn is not None
        return PostgresLedger(store.dsn.resolve())
    from agent.ledger.sqlite import SqliteLedger

    return SqliteLedger(store.path)
