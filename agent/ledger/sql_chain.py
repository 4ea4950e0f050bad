"""Verifying and pruning the events' hash chain, in SQL both backends share (see chain.py).

Mixed into `SqlLedger`; `hemostat ledger verify` calls `verify_chain`, `hemostat ledger prune`
calls `prune_through`, the only way events may be deleted without breaking the chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.ledger import chain, projection
from agent.ledger.base import Event, LedgerError

BATCH = 500  # events read per transaction while verifying: bounded memory on a long ledger


class ChainOps:
    """Chain reads and pruning; the backend supplies `_tx`, `_append` and `_data_text`."""

    _data_text = "data"  # the SQL expression for the JSON text that was hashed

    if TYPE_CHECKING:  # supplied by SqlLedger; declared here for the type checker only
        def _tx(self) -> AbstractContextManager[Any]: ...

        def _append(self, cur: Any, type: str, actor: str, at: datetime, incident_id: str | None,
                    proposal_id: str | None, data: dict[str, Any] | None) -> Event: ...

        def _stamp(self, at: datetime) -> Any: ...

    def anchor(self) -> chain.Anchor | None:
        """The newest prune anchor, where the chain now begins (None if never pruned)."""
        with self._tx() as cur:
            return _anchor(cur)

    def anchors(self) -> list[chain.Anchor]:
        """Every prune anchor, oldest first (an archive must start and end at them)."""
        with self._tx() as cur:
            cur.execute("SELECT through_seq, hash FROM ledger_anchors ORDER BY through_seq")
            return [chain.Anchor(int(r[0]), r[1]) for r in cur.fetchall()]

    def head(self) -> chain.Anchor:
        """The chain's head now: the newest event's seq and hash (published in /metrics, so a
        ledger rewritten later no longer matches a head recorded elsewhere)."""
        with self._tx() as cur:
            seq, hash_ = last_link(cur)
        return chain.Anchor(seq, hash_)

    def chain_rows(self, after_seq: int = 0) -> Iterator[chain.ChainRow]:
        """Every event after `after_seq` as stored, read in batches."""
        while True:
            with self._tx() as cur:
                cur.execute(f"SELECT seq, at, type, actor, incident_id, proposal_id, "
                            f"{self._data_text}, hash FROM events WHERE seq > ? "
                            f"ORDER BY seq LIMIT {BATCH}", (after_seq,))
                rows = cur.fetchall()
            for r in rows:
                yield chain.ChainRow(int(r[0]), _when(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
            if len(rows) < BATCH:
                return
            after_seq = int(rows[-1][0])

    def verify_chain(self, expect: chain.Anchor | None = None,
                     seal_key: bytes | None = None) -> chain.Verification:
        """Recompute every link from the newest anchor (or the start) to the head; `expect`, a
        head written down earlier, must still be in the chain. Then recompute the proposals,
        approvals and incidents from those events and compare them with the tables
        (agent.ledger.projection): a forged or edited row fails, named; with `seal_key`, so does
        an approval event the daemon did not seal."""
        anchor = self.anchor()
        want = projection.Expected(seal_key=seal_key)

        def rows() -> Iterator[chain.ChainRow]:
            for row in self.chain_rows(anchor.through_seq if anchor else 0):
                want.add(row)
                yield row

        result = chain.verify(rows(), anchor, expect)
        if not result.ok:
            return result
        with self._tx() as cur:
            problems = projection.differences(want, cur, complete=anchor is None)
        if not problems:
            return result
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return dataclasses.replace(result, reason="the records do not match their events: "
                                   + "; ".join(problems[:5]) + more)

    def prune_through(self, through_seq: int, actor: str, at: datetime) -> int:
        """Delete events up to `through_seq`, keeping the chain verifiable; returns how many.

        Refuses on a chain that does not verify (pruning must not launder a tamper). In one
        transaction: anchor the last pruned event's hash, append a `ledger_pruned` event that
        repeats the anchor (so the anchor is itself chained), then delete the prefix. The
        triggers let DELETE through only for anchored events. On PostgreSQL with split roles
        (agent/ledger/pg_roles.py) the daemon's role may neither delete events nor write
        anchors: prune with the owner's DSN (`--owner-dsn`, as `hemostat ledger migrate` does).
        """
        checked = self.verify_chain()
        if not checked.ok:
            raise LedgerError(f"the ledger does not verify, so nothing was pruned: {checked.reason}",
                              code="ledger_tampered")
        with self._tx() as cur:
            cur.execute("SELECT seq, hash FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                        (through_seq,))
            last = cur.fetchone()
            if last is None:
                return 0
            cur.execute("SELECT count(*) FROM events WHERE seq <= ?", (last[0],))
            count = int(cur.fetchone()[0])
            cur.execute("INSERT INTO ledger_anchors (through_seq, hash, at, pruned) VALUES (?, ?, ?, ?)",
                        (last[0], last[1], self._stamp(at), count))
            self._append(cur, chain.PRUNED, actor, at, None, None,
                         {"through_seq": int(last[0]), "hash": last[1], "pruned": count})
            cur.execute("DELETE FROM events WHERE seq <= ?", (last[0],))
        return count



def _anchor(cur: Any) -> chain.Anchor | None:
    cur.execute("SELECT through_seq, hash FROM ledger_anchors ORDER BY through_seq DESC LIMIT 1")
    row = cur.fetchone()
    return chain.Anchor(int(row[0]), row[1]) if row else None


def last_link(cur: Any) -> tuple[int, str]:
    """(seq, hash) the next event chains to: the newest event, else the anchor, else genesis."""
    cur.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
    row = cur.fetchone()
    if row is not None:
        return int(row[0]), row[1] or chain.GENESIS
    anchor = _anchor(cur)
    return (anchor.through_seq, anchor.hash) if anchor else (0, chain.GENESIS)


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
