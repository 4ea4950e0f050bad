"""The events' hash chain, one contract for every backend: each tamper an owner can make is
found, and named by the first event that no longer chains."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.ledger import Ledger, LedgerError
from agent.ledger.chain import link

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
FORGED = '{"text": "forged"}'  # the same text in SQLite and as jsonb prints it


def _five(ledger: Ledger) -> list[int]:
    datas = [{"text": "first"}, {"n": 1.5, "nested": {"b": [1, 2], "a": None}},
             {"text": "naïve ☃ <b>"}, {"big": 2**60, "tiny": 1e-07}, {}]
    return [ledger.append("note", f"actor-{i}", T0 + timedelta(seconds=i), incident_id="inc-1",
                          data=d).seq for i, d in enumerate(datas)]


class TestHashChain:
    def test_every_event_chains_to_the_one_before(self, ledger: Ledger) -> None:
        seqs = _five(ledger)
        result = ledger.verify_chain()
        assert result.ok and result.checked == 5
        assert (result.first_seq, result.head_seq) == (seqs[0], seqs[-1])
        assert result.head_hash == list(ledger.chain_rows())[-1].hash

    def test_a_changed_event_is_the_first_broken_link(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        as_owner(f"UPDATE events SET data = '{FORGED}' WHERE seq = {seqs[2]}")
        result = ledger.verify_chain()
        assert not result.ok and result.broken_seq == seqs[2] and result.checked == 2
        assert f"event {seqs[2]} (note by actor-2" in str(result.reason)

    def test_a_changed_actor_is_found(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        as_owner(f"UPDATE events SET actor = 'mallory' WHERE seq = {seqs[1]}")
        assert ledger.verify_chain().broken_seq == seqs[1]

    def test_a_rehashed_forgery_breaks_the_next_link(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        rows = list(ledger.chain_rows())
        forged = link(rows[1].hash or "", seqs[2], rows[2].at, "note", "actor-2", "inc-1", None, FORGED)
        as_owner(f"UPDATE events SET data = '{FORGED}', hash = '{forged}' WHERE seq = {seqs[2]}")
        result = ledger.verify_chain()
        assert result.broken_seq == seqs[3] and result.checked == 3

    def test_a_removed_event_breaks_the_link_after_it(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        as_owner(f"DELETE FROM events WHERE seq = {seqs[1]}")
        assert ledger.verify_chain().broken_seq == seqs[2]

    def test_a_removed_beginning_is_found(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        as_owner(f"DELETE FROM events WHERE seq <= {seqs[1]}")
        result = ledger.verify_chain()
        assert result.broken_seq == seqs[2] and "start of the ledger" in str(result.reason)

    def test_events_appended_by_several_connections_chain(self, ledger_factory: Callable[[], Ledger]) -> None:
        first, second = ledger_factory(), ledger_factory()
        for i in range(6):
            (first if i % 2 else second).append("note", "alice", T0, data={"i": i})
        assert first.verify_chain().checked == 6 and second.verify_chain().ok
        first.close()
        second.close()

    def test_pruning_keeps_the_chain_verifiable(self, ledger: Ledger) -> None:
        seqs = _five(ledger)
        assert ledger.prune_through(seqs[2], "ops", T0) == 3
        ledger.append("note", "alice", T0, data={"text": "after"})
        result = ledger.verify_chain()
        assert result.ok and result.anchor is not None and result.anchor.through_seq == seqs[2]
        assert [e.seq for e in ledger.events()][:2] == seqs[3:]
        assert [e.type for e in ledger.events()][-2:] == ["ledger_pruned", "note"]

    def test_pruning_everything_then_appending_still_chains(self, ledger: Ledger) -> None:
        seqs = _five(ledger)
        ledger.prune_through(seqs[-1], "ops", T0)
        ledger.append("note", "alice", T0)
        assert ledger.verify_chain().ok and ledger.events()[0].seq > seqs[-1]

    def test_an_anchor_not_in_the_chain_is_a_forgery(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        rows = list(ledger.chain_rows())
        as_owner(f"INSERT INTO ledger_anchors (through_seq, hash, at, pruned) "
                 f"VALUES ({seqs[1]}, '{rows[1].hash}', '2026-11-27T03:00:00+00:00', 2)",
                 f"DELETE FROM events WHERE seq <= {seqs[1]}")
        result = ledger.verify_chain()
        assert not result.ok and "anchor" in str(result.reason) and "not confirmed" in str(result.reason)

    def test_a_tampered_ledger_is_not_pruned(self, ledger: Ledger, as_owner: Callable[..., None]) -> None:
        seqs = _five(ledger)
        as_owner(f"UPDATE events SET actor = 'mallory' WHERE seq = {seqs[0]}")
        with pytest.raises(LedgerError, match="does not verify") as caught:
            ledger.prune_through(seqs[3], "ops", T0)
        assert caught.value.code == "ledger_tampered" and len(ledger.events()) == 5

    def test_events_cannot_be_deleted_without_an_anchor(self, ledger_factory: Callable[[], Ledger]) -> None:
        ledger = ledger_factory()
        _five(ledger)
        with pytest.raises(Exception, match="append-only"):
            _raw_delete(ledger)
        assert len(ledger.events()) == 5
        ledger.close()


def _raw_delete(ledger: Ledger) -> None:
    """DELETE through the ledger's own connection, as the daemon's code would if it tried."""
    with ledger._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("DELETE FROM events WHERE seq = 1")


OLD_EVENTS = [("2026-11-27T03:00:00+00:00", "note", "alice", '{"text": "before the chain"}'),
              ("2026-11-27T03:01:00+00:00", "note", "bob", '{}')]


def test_a_sqlite_ledger_from_before_the_chain_is_chained_on_upgrade(tmp_path: Path) -> None:
    from agent.ledger import sqlite as backend

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for script in backend.MIGRATIONS[:2]:
        for statement in backend._statements(str(script)):
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1), (2)")
    conn.executemany("INSERT INTO events (at, type, actor, data) VALUES (?, ?, ?, ?)", OLD_EVENTS)
    conn.close()
    ledger = backend.SqliteLedger(path)
    ledger.append("note", "carol", T0)
    assert ledger.verify_chain().checked == 3
    ledger.close()


def test_a_postgres_ledger_from_before_the_chain_is_chained_on_upgrade(pg_db: str) -> None:
    import psycopg

    from agent.ledger import postgres as backend

    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, script in enumerate(backend.MIGRATIONS[:2], start=1):
            conn.execute(script.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO events (at, type, actor, data) VALUES (%s, %s, %s, %s)", OLD_EVENTS)
    ledger = backend.PostgresLedger(pg_db)
    ledger.append("note", "carol", T0)
    assert ledger.verify_chain().checked == 3
    ledger.close()
