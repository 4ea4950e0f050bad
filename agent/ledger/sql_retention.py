"""Retention queries both backends share: where a prune may cut, and removing the records of
incidents whose whole timeline went to an archive. Mixed into `SqlLedger`; `agent.ledger.retention`
(`hemostat ledger prune`) calls them around `prune_through`.

The events form one hash chain, so only a prefix can be pruned. The cut stops before the first
event that is recent (at or after the cutoff) or that belongs to an incident or proposal still
live: an incident not resolved before the cutoff, a proposal not final before it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

FINAL_STATES = ("succeeded", "failed", "reverted", "rejected", "expired", "denied")


@dataclass(frozen=True)
class Cut:
    """Events with seq <= `through_seq` (`events` of them) may go. `stopped_by` says what kept
    the rest (None: nothing did)."""

    through_seq: int
    events: int
    stopped_by: str | None


class RetentionOps:
    """The backend supplies `_tx` and `_stamp`."""

    if TYPE_CHECKING:  # supplied by SqlLedger; declared here for the type checker only
        def _tx(self) -> AbstractContextManager[Any]: ...

        def _stamp(self, at: datetime) -> Any: ...

    def prune_cut(self, before: datetime) -> Cut:
        stamp, finals = self._stamp(before), ", ".join(f"'{s}'" for s in FINAL_STATES)
        with self._tx() as cur:
            cur.execute(
                "SELECT seq, type, incident_id, proposal_id, at FROM events WHERE at >= ? "
                "OR incident_id IN (SELECT id FROM incidents WHERE status <> 'resolved' OR resolved_at >= ?) "
                f"OR proposal_id IN (SELECT id FROM proposals WHERE state NOT IN ({finals}) "
                "OR updated_at >= ?) ORDER BY seq LIMIT 1", (stamp, stamp, stamp))
            first_kept = cur.fetchone()
            if first_kept is None:
                cur.execute("SELECT MAX(seq) FROM events")
            else:
                cur.execute("SELECT MAX(seq) FROM events WHERE seq < ?", (first_kept[0],))
            through = int(cur.fetchone()[0] or 0)
            cur.execute("SELECT COUNT(*) FROM events WHERE seq <= ?", (through,))
            count = int(cur.fetchone()[0])
        return Cut(through, count, _why_kept(first_kept, before) if first_kept else None)

    def archived_incidents(self, before: datetime, through_seq: int) -> list[str]:
        """Incidents resolved before the cutoff none of whose events outlive the cut."""
        with self._tx() as cur:
            cur.execute("SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at < ? "
                        "AND NOT EXISTS (SELECT 1 FROM events WHERE events.incident_id = incidents.id "
                        "AND events.seq > ?) ORDER BY opened_at", (self._stamp(before), through_seq))
            return [r[0] for r in cur.fetchall()]

    def incident_rows(self, incident_ids: list[str]) -> list[dict[str, Any]]:
        """The incidents, their proposals, approvals and revert approvals as stored, for the archive."""
        out: list[dict[str, Any]] = []
        with self._tx() as cur:
            proposals = _proposal_ids(cur, incident_ids)
            for table, column, ids in (("incidents", "id", incident_ids),
                                       ("proposals", "incident_id", incident_ids),
                                       ("approvals", "proposal_id", proposals),
                                       ("revert_approvals", "proposal_id", proposals)):
                for chunk in _chunks(ids):
                    cur.execute(f"SELECT * FROM {table} WHERE {column} IN ({_marks(chunk)})", chunk)
                    names = [d[0] for d in cur.description]
                    out.extend({"table": table, "row": dict(zip(names, r, strict=True))}
                               for r in cur.fetchall())
        return out

    def remove_incidents(self, incident_ids: list[str]) -> None:
        """Delete archived incidents with their proposals and (revert) approvals, in one transaction."""
        with self._tx() as cur:
            for chunk in _chunks(incident_ids):
                proposals = _proposal_ids(cur, chunk)
                for sub in _chunks(proposals):
                    cur.execute(f"DELETE FROM approvals WHERE proposal_id IN ({_marks(sub)})", sub)
                    cur.execute(f"DELETE FROM revert_approvals WHERE proposal_id IN ({_marks(sub)})", sub)
                cur.execute(f"DELETE FROM proposals WHERE incident_id IN ({_marks(chunk)})", chunk)
                cur.execute(f"DELETE FROM incidents WHERE id IN ({_marks(chunk)})", chunk)


def _why_kept(row: Any, before: datetime) -> str:
    seq, type_, incident, proposal, at = row
    when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    if when >= before:
        return f"event {seq} ({type_}) is not older than the cutoff"
    owner = f"incident {incident}" if incident else f"proposal {proposal}"
    return f"event {seq} ({type_}) belongs to {owner}, still open or not settled before the cutoff"


def _proposal_ids(cur: Any, incident_ids: list[str]) -> list[str]:
    ids: list[str] = []
    for chunk in _chunks(incident_ids):
        cur.execute(f"SELECT id FROM proposals WHERE incident_id IN ({_marks(chunk)})", chunk)
        ids.extend(r[0] for r in cur.fetchall())
    return ids


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _marks(items: list[str]) -> str:
    return ", ".join("?" for _ in items)
