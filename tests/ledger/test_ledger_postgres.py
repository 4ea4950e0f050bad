"""What only the PostgreSQL ledger has: versioned migrations raced by replicas, an append-only
events table enforced by the database, leadership lost with its connection, and reconnection."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from agent.ledger import LedgerError
from agent.ledger.postgres import MIGRATIONS, PostgresLedger
from tests.services.postgres import PgServer

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_replicas_starting_together_migrate_once(pg_db: str) -> None:
    opened: list[PostgresLedger] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        opened.append(PostgresLedger(pg_db))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 4 and {ledger.schema_version() for ledger in opened} == {len(MIGRATIONS)}
    with psycopg.connect(pg_db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (len(MIGRATIONS),)
    for ledger in opened:
        ledger.close()


def test_a_ledger_newer_than_this_hemostat_refuses_to_open(pg_db: str) -> None:
    PostgresLedger(pg_db).close()
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(LedgerError, match="schema version 99") as caught:
        PostgresLedger(pg_db)
    assert caught.value.code == "ledger_too_new"


@pytest.mark.parametrize("statement", ["UPDATE events SET actor = 'mallory'", "DELETE FROM events",
                                       "TRUNCATE events"])
def test_events_are_append_only_in_the_database(pg_db: str, statement: str) -> None:
    ledger = PostgresLedger(pg_db)
    ledger.append("note", "alice", T0, data={"text": "kept"})
    with psycopg.connect(pg_db, autocommit=True) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(statement)
    assert [e.actor for e in ledger.events()] == ["alice"]
    ledger.close()


def test_leader_whose_connection_dies_loses_the_lead(pg_db: str) -> None:
    first, second = PostgresLedger(pg_db), PostgresLedger(pg_db)
    assert first.try_lead("daemon-a") and not second.try_lead("daemon-b")
    with psycopg.connect(pg_db, autocommit=True) as conn:
        killed = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'hemostat-leader:daemon-a'").fetchall()
    assert killed == [(True,)]
    assert second.try_lead("daemon-b")
    assert not first.try_lead("daemon-a")  # notices the lost session and cannot win it back
    first.close()
    second.close()


def test_ledger_reconnects_after_the_server_comes_back(pg_server: PgServer, pg_db: str) -> None:
    ledger = PostgresLedger(pg_db)
    try:
        ledger.append("note", "alice", T0)
        pg_server.stop()
        with pytest.raises(LedgerError) as caught:
            ledger.append("note", "bob", T0)
        assert caught.value.code == "ledger_unavailable"
        pg_server.start()
        ledger.append("note", "carol", T0)
        assert [e.actor for e in ledger.events()] == ["alice", "carol"]
    finally:
        pg_server.start()
        ledger.close()


@pytest.mark.parametrize("why", ["wrong password", "nobody listening"])
def test_connection_errors_never_show_the_password(pg_server: PgServer, pg_db: str, why: str) -> None:
    secret = "Ledger-Pa55-0x"
    dbname = pg_db.split("dbname=")[1].split()[0]
    port = pg_server.port if why == "wrong password" else 9
    dsn = f"postgresql://postgres:{secret}@{pg_server.host}:{port}/{dbname}"
    with pytest.raises(LedgerError) as caught:
        PostgresLedger(dsn)
    assert caught.value.code == "ledger_unavailable" and secret not in str(caught.value)
    assert f"{pg_server.host}:{port}/{dbname}" in str(caught.value)
