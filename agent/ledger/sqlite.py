"""The embedded ledger on SQLite: one file, WAL mode, write transactions taken IMMEDIATE.

`BEGIN IMMEDIATE` takes the write lock at the start of the transaction, so two processes
(the daemon and `hemostat approve`) serialize instead of failing with a busy upgrade.
Triggers refuse UPDATE and DELETE on events: the timeline is append-only in the file itself.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.ledger import chain
from agent.ledger.base import LedgerError
from agent.ledger.sql import SqlLedger, iter_migrations
from agent.ledger.sql_chain import last_link

MIGRATIONS: tuple[str | Callable[[Any], None], ...] = (
    """
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY, target TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
        severity INTEGER NOT NULL, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        group_key TEXT, resolved_at TEXT, data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX incidents_group ON incidents (group_key, status);
    CREATE TABLE proposals (
        id TEXT PRIMARY KEY, incident_id TEXT, target TEXT NOT NULL, action TEXT NOT NULL,
        state TEXT NOT NULL, proposal TEXT NOT NULL, verdict TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, expires_at TEXT,
        plan TEXT, claimed_by TEXT
    );
    CREATE INDEX proposals_state ON proposals (state);
    CREATE TABLE approvals (
        proposal_id TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (proposal_id, actor)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, type TEXT NOT NULL,
        actor TEXT NOT NULL, incident_id TEXT, proposal_id TEXT, data TEXT NOT NULL
    );
    CREATE INDEX events_incident ON events (incident_id, seq);
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    """,
    # v2: one open incident per target (see the PostgreSQL backend).
    "CREATE UNIQUE INDEX incidents_one_open ON incidents (target) WHERE status <> 'resolved';",
    # v3: heartbeats (the executing leader's, so `approve` can say whether anyone will run it).
    "CREATE TABLE heartbeats (role TEXT PRIMARY KEY, holder TEXT NOT NULL, at TEXT NOT NULL);",
    # v4: who approved, as an identity source vouched for it (agent.model.identity); one
    # approval per normalised subject; reverts are approved in their own table.
    """
    ALTER TABLE approvals ADD COLUMN source TEXT NOT NULL DEFAULT 'asserted';
    ALTER TABLE approvals ADD COLUMN subject TEXT;
    ALTER TABLE approvals ADD COLUMN display_name TEXT;
    ALTER TABLE approvals ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE approvals ADD COLUMN uid TEXT NOT NULL DEFAULT '';
    UPDATE approvals SET subject = lower(trim(actor)), display_name = actor WHERE subject IS NULL;
    CREATE UNIQUE INDEX approvals_one_per_subject ON approvals (proposal_id, subject);
    CREATE TABLE revert_approvals (
        proposal_id TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
        source TEXT NOT NULL, subject TEXT NOT NULL, display_name TEXT NOT NULL,
        groups TEXT NOT NULL DEFAULT '[]', uid TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (proposal_id, subject)
    );
    """,
    # v5: the hash chain (agent/ledger/chain.py); existing events are chained as they stand.
    lambda cur: _chain_events(cur),
)
CHAIN_SCHEMA = """
    ALTER TABLE events ADD COLUMN hash TEXT;
    CREATE TABLE ledger_anchors (
        through_seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, at TEXT NOT NULL, pruned INTEGER NOT NULL
    );
    CREATE TRIGGER ledger_anchors_no_update BEFORE UPDATE ON ledger_anchors
        BEGIN SELECT RAISE(ABORT, 'ledger anchors are append-only'); END;
    CREATE TRIGGER ledger_anchors_no_delete BEFORE DELETE ON ledger_anchors
        BEGIN SELECT RAISE(ABORT, 'ledger anchors are append-only'); END;
    DROP TRIGGER events_no_delete;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        WHEN NOT EXISTS (SELECT 1 FROM ledger_anchors WHERE through_seq >= OLD.seq)
        BEGIN SELECT RAISE(ABORT, 'events are append-only (only an anchored prefix may be pruned)'); END;
"""


class SqliteLedger(SqlLedger):
    """Ledger in one SQLite file. Safe for several processes on one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # one connection, shared by the daemon's worker threads
        self._lead_fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise LedgerError(f"cannot open ledger {self.path}: {e}", code="ledger_unavailable") from e

    def close(self) -> None:
        if self._lead_fd is not None:
            os.close(self._lead_fd)  # releases the leader lock
            self._lead_fd = None
        self._conn.close()

    def try_lead(self, name: str) -> bool:
        """Leader = holder of an exclusive flock beside the ledger file; the kernel releases
        it when the process dies, so a crashed leader never blocks its successor."""
        if self._lead_fd is not None:
            return True
        fd = os.open(f"{self.path}.lead", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lead_fd = fd
        return True

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield from self._locked_tx()

    def _locked_tx(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise LedgerError(f"ledger {self.path} is unavailable: {e}",
                              code="ledger_unavailable") from e
        try:
            yield cur
        except sqlite3.IntegrityError as e:  # a unique rule: someone else wrote it first
            self._conn.rollback()
            raise LedgerError(f"ledger {self.path}: {e}", code="conflict") from e
        except sqlite3.Error as e:  # disk full, I/O error, locked past the timeout
            self._conn.rollback()
            raise LedgerError(f"ledger {self.path} write failed: {e}", code="ledger_write_failed") from e
        except BaseException:
            self._conn.rollback()
            raise
        try:
            cur.execute("COMMIT")
        except sqlite3.Error as e:
            self._conn.rollback()
            raise LedgerError(f"ledger {self.path} write failed: {e}",
                              code="ledger_write_failed") from e
        finally:
            cur.close()

    def _insert_event(self, cur: Any, values: tuple[Any, ...]) -> int:
        """Append under the write lock (BEGIN IMMEDIATE), so the seq and the previous hash
        read here are still the newest when the row lands."""
        seq = _next_seq(cur)
        at, type, actor, incident_id, proposal_id, data = values
        digest = chain.link(last_link(cur)[1], seq, datetime.fromisoformat(at), type, actor,
                            incident_id, proposal_id, data)
        cur.execute("INSERT INTO events (seq, at, type, actor, incident_id, proposal_id, data, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, *values, digest))
        return seq

    def _migrate(self) -> None:
        with self._tx() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, step in iter_migrations(MIGRATIONS):
                if version > current:
                    for statement in [] if callable(step) else _statements(step):
                        cur.execute(statement)
                    if callable(step):
                        step(cur)
                    cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _next_seq(cur: Any) -> int:
    """One past the highest seq ever used (AUTOINCREMENT's own counter survives pruning)."""
    cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
    row = cur.fetchone()
    return max(int(row[0]) if row else 0, last_link(cur)[0]) + 1


def _chain_events(cur: Any) -> None:
    """v5: add the chain, then hash the events already there (the no-update trigger is lifted
    for this one pass, inside the migration's transaction)."""
    for statement in _statements(CHAIN_SCHEMA):
        cur.execute(statement)
    cur.execute("DROP TRIGGER events_no_update")
    cur.execute("SELECT seq, at, type, actor, incident_id, proposal_id, data FROM events ORDER BY seq")
    prev = chain.GENESIS
    for seq, at, type, actor, incident_id, proposal_id, data in cur.fetchall():
        prev = chain.link(prev, seq, datetime.fromisoformat(at), type, actor, incident_id,
                          proposal_id, data)
        cur.execute("UPDATE events SET hash = ? WHERE seq = ?", (prev, seq))
    cur.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
                "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END")


def _statements(script: str) -> list[str]:
    """Split a migration on `;` outside trigger bodies (which end with `END;`)."""
    out, buf = [], ""
    for part in script.split(";"):
        buf += part + ";"
        if buf.count("BEGIN") <= buf.count("END;"):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out
