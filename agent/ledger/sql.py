"""The ledger's logic in portable SQL; SQLite and PostgreSQL backends supply connection and dialect.

Every write runs in one transaction that also appends its event, so the timeline and the
records never disagree. State changes are compare-and-set on the current state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar

from agent.ledger import binding
from agent.ledger.base import (
    INCIDENT_STATUSES,
    Event,
    IncidentRecord,
    LedgerError,
    ProposalRecord,
    TransitionError,
    check_transition,
)
from agent.ledger.events_log import log_event
from agent.ledger.sql_chain import ChainOps
from agent.ledger.sql_retention import RetentionOps
from agent.model import Proposal, Verdict
from agent.model.identity import Approval, Identity

Row = Sequence[Any]
T = TypeVar("T")

INCIDENT_COLS = "id, target, title, status, severity, opened_at, updated_at, group_key, resolved_at, data"
PROPOSAL_COLS = "id, state, proposal, verdict, updated_at, expires_at, plan, claimed_by"


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _opt_dt(value: Any) -> datetime | None:
    return None if value is None else _dt(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _event_row(r: Row) -> Event:
    return Event(r[0], _dt(r[1]), r[2], r[3], r[4], r[5], _json(r[6]))


class SqlLedger(ChainOps, RetentionOps):
    """Backend-neutral ledger. Subclasses implement `_tx()` (a write/read transaction) and
    `_insert_event()` (which must return the new sequence number)."""

    def _tx(self) -> AbstractContextManager[Any]:
        raise LedgerError("backend did not implement transactions")

    def _insert_event(self, cur: Any, values: tuple[Any, ...]) -> int:
        raise LedgerError("backend did not implement event insertion")

    def _stamp(self, at: datetime) -> Any:
        return at.isoformat()

    # -- events --------------------------------------------------------------------------------
    def _append(self, cur: Any, type: str, actor: str, at: datetime, incident_id: str | None,
                proposal_id: str | None, data: dict[str, Any] | None) -> Event:
        payload = json.dumps(data or {}, sort_keys=True, default=str)
        values = (self._stamp(at), type, actor, incident_id, proposal_id, payload)
        seq = self._insert_event(cur, values)
        log_event(type, actor, incident_id, proposal_id, data or {})
        return Event(seq, at, type, actor, incident_id, proposal_id, dict(data or {}))

    def append(self, type: str, actor: str, at: datetime, *, incident_id: str | None = None,
               proposal_id: str | None = None, data: dict[str, Any] | None = None) -> Event:
        with self._tx() as cur:
            return self._append(cur, type, actor, at, incident_id, proposal_id, data)

    def events(self, *, incident_id: str | None = None, proposal_id: str | None = None,
               after_seq: int = 0, limit: int | None = None,
               types: Sequence[str] | None = None) -> list[Event]:
        sql = "SELECT seq, at, type, actor, incident_id, proposal_id, data FROM events WHERE seq > ?"
        params: list[Any] = [after_seq]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        if proposal_id is not None:
            sql += " AND proposal_id = ?"
            params.append(proposal_id)
        if types:  # in SQL: a long incident's observations are never read to find a few lines
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            params.extend(types)
        sql += " ORDER BY seq" + (f" LIMIT {int(limit)}" if limit else "")
        with self._tx() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [_event_row(r) for r in rows]

    # -- incidents -----------------------------------------------------------------------------
    def _incident_row(self, r: Row) -> IncidentRecord:
        return IncidentRecord(r[0], r[1], r[2], r[3], int(r[4]), _dt(r[5]), _dt(r[6]), r[7],
                              _opt_dt(r[8]), _json(r[9]) or {})

    def open_incident(self, incident: IncidentRecord, actor: str) -> IncidentRecord:
        with self._tx() as cur:
            cur.execute(
                f"INSERT INTO incidents ({INCIDENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (incident.id, incident.target, incident.title, incident.status, incident.severity,
                 self._stamp(incident.opened_at), self._stamp(incident.updated_at),
                 incident.group_key, None, json.dumps(incident.data, default=str)),
            )
            self._append(cur, "incident_opened", actor, incident.opened_at, incident.id, None,
                         {"target": incident.target, "title": incident.title,
                          "severity": incident.severity, "group_key": incident.group_key})
        return incident

    def open_or_join(self, incident: IncidentRecord, actor: str) -> tuple[IncidentRecord, bool]:
        """Open `incident`, or return the target's open one if another writer won the race."""
        try:
            return self.open_incident(incident, actor), True
        except LedgerError as e:
            existing = self.find_open_incident(target=incident.target) if e.code == "conflict" else None
            if existing is None:
                raise
            return existing, False

    def find_open_incident(self, *, group_key: str | None = None,
                           target: str | None = None) -> IncidentRecord | None:
        column, value = ("group_key", group_key) if group_key is not None else ("target", target)
        with self._tx() as cur:
            cur.execute(f"SELECT {INCIDENT_COLS} FROM incidents WHERE {column} = ? "
                        "AND status <> 'resolved' ORDER BY opened_at DESC LIMIT 1", (value,))
            row = cur.fetchone()
        return self._incident_row(row) if row else None

    def incident(self, ref: str, *, exact: bool = False) -> IncidentRecord:
        """By id, or (not `exact`: the CLI's) by a unique prefix of it, wildcards taken literally."""
        with self._tx() as cur:
            cur.execute(f"SELECT {INCIDENT_COLS} FROM incidents WHERE {_match(exact)} ORDER BY id",
                        (_pattern(ref, exact),))
            rows = cur.fetchall()
        return self._incident_row(_one(rows, "incident", ref))

    def incidents(self, *, open_only: bool = False) -> list[IncidentRecord]:
        where = " WHERE status <> 'resolved'" if open_only else ""
        with self._tx() as cur:
            cur.execute(f"SELECT {INCIDENT_COLS} FROM incidents{where} ORDER BY opened_at DESC")
            return [self._incident_row(r) for r in cur.fetchall()]

    def set_incident_status(self, incident_id: str, status: str, actor: str, at: datetime,
                            *, severity: int | None = None,
                            data: dict[str, Any] | None = None) -> IncidentRecord:
        if status not in INCIDENT_STATUSES:
            raise LedgerError(f"unknown incident status {status!r} (known: {', '.join(INCIDENT_STATUSES)})")
        current = self.incident(incident_id)
        merged = {**current.data, **(data or {})}
        resolved = self._stamp(at) if status == "resolved" else None
        with self._tx() as cur:
            cur.execute(
                "UPDATE incidents SET status = ?, severity = ?, updated_at = ?, resolved_at = ?, "
                "data = ? WHERE id = ?",
                (status, severity or current.severity, self._stamp(at), resolved,
                 json.dumps(merged, default=str), current.id),
            )
            self._append(cur, "status_changed", actor, at, current.id, None,
                         {"from": current.status, "to": status, **(data or {}),
                          **({"severity": severity} if severity else {})})
        return self.incident(current.id)

    # -- proposals -----------------------------------------------------------------------------
    def _proposal_row(self, cur: Any, r: Row) -> ProposalRecord:
        approvals = self._approvals(cur, "approvals", r[0])
        reverts = self._approvals(cur, "revert_approvals", r[0]) if r[1] in ("succeeded", "failed",
                                                                               "reverted") else ()
        return ProposalRecord(
            proposal=Proposal.from_json(_json(r[2])), verdict=Verdict.from_json(_json(r[3])),
            state=r[1], updated_at=_dt(r[4]), expires_at=_opt_dt(r[5]),
            approvers=tuple(a.identity.name for a in approvals), plan=_json(r[6]), claimed_by=r[7],
            approvals=approvals, revert_approvals=reverts,
        )

    def _approvals(self, cur: Any, table: str, proposal_id: str) -> tuple[Approval, ...]:
        cur.execute(f"SELECT source, subject, display_name, groups, uid, at FROM {table} "
                    "WHERE proposal_id = ? ORDER BY at", (proposal_id,))
        kind = "revert" if table == "revert_approvals" else "proposal"
        return tuple(Approval(Identity(r[0], r[1], r[2] or "", tuple(_json(r[3]) or ()), r[4] or ""),
                              _dt(r[5]), kind) for r in cur.fetchall())

    def _insert_approval(self, cur: Any, table: str, proposal_id: str, who: Identity,
                         at: datetime) -> None:
        cur.execute(f"INSERT INTO {table} (proposal_id, actor, at, source, subject, display_name, "
                    "groups, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (proposal_id, who.subject, self._stamp(at), who.source, who.subject, who.name,
                     json.dumps(list(who.groups)), who.uid))

    def add_proposal(self, proposal: Proposal, verdict: Verdict, at: datetime,
                     expires_at: datetime | None) -> ProposalRecord:
        state = _initial_state(verdict)
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO proposals (id, incident_id, target, action, state, proposal, verdict, "
                "created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (proposal.id, proposal.incident_id, proposal.target, proposal.action, state,
                 json.dumps(proposal.to_json()), json.dumps(verdict.to_json()), self._stamp(at),
                 self._stamp(at), self._stamp(expires_at) if expires_at else None),
            )
            self._append(cur, "proposal", proposal.proposer, at, proposal.incident_id, proposal.id,
                         {"proposal": proposal.to_json(), "verdict": verdict.to_json(),
                          "state": state})
        return self.proposal(proposal.id)

    def proposal(self, ref: str, *, exact: bool = False) -> ProposalRecord:
        """By id, or (not `exact`: the CLI's) by a unique prefix of it, wildcards taken literally."""
        with self._tx() as cur:
            cur.execute(f"SELECT {PROPOSAL_COLS} FROM proposals WHERE {_match(exact)} ORDER BY id",
                        (_pattern(ref, exact),))
            row = _one(cur.fetchall(), "proposal", ref)
            return self._proposal_row(cur, row)

    def proposals(self, *, states: tuple[str, ...] | None = None,
                  incident_id: str | None = None) -> list[ProposalRecord]:
        sql = f"SELECT {PROPOSAL_COLS} FROM proposals WHERE 1 = 1"
        params: list[Any] = []
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        if incident_id:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        with self._tx() as cur:
            cur.execute(sql + " ORDER BY created_at, id", params)
            rows = cur.fetchall()
            return [self._proposal_row(cur, r) for r in rows]

    def approve(self, ref: str, actor: Identity | str, at: datetime,
                override: dict[str, Any] | None = None, seal_key: bytes | None = None) -> ProposalRecord:
        who = actor if isinstance(actor, Identity) else Identity.asserted(actor)
        record = self.proposal(ref)
        _check_approvable(record, who, at, "denied" if override else "proposed")
        needed = max(1, record.verdict.approvals_required)
        content = binding.content_hash(record.proposal.to_json())
        bound = {"content": content, **({"seal": binding.seal(seal_key, record.id, content, who.to_json())}
                                         if seal_key else {})}
        with self._tx() as cur:
            self._insert_approval(cur, "approvals", record.id, who, at)
            self._append(cur, "approval", who.name, at, record.proposal.incident_id, record.id,
                         {"approvals": len(record.approvals) + 1, "needed": needed,
                          "identity": who.to_json(), **bound})
            if len(record.approvals) + 1 >= needed:
                self._cas(cur, record, "approved", who.name, at, override or {})
        return self.proposal(record.id)

    def approve_revert(self, ref: str, actor: Identity, at: datetime,
                       seal_key: bytes | None = None) -> ProposalRecord:
        record = self.proposal(ref)
        if any(a.identity.same_person(actor) for a in record.revert_approvals):
            raise TransitionError(f"{actor.name} has already approved reverting {record.id}")
        content = binding.REVERT + binding.content_hash(record.proposal.to_json())
        bound = {"content": content, **({"seal": binding.seal(seal_key, record.id, content, actor.to_json())}
                                         if seal_key else {})}
        with self._tx() as cur:
            self._insert_approval(cur, "revert_approvals", record.id, actor, at)
            self._append(cur, "revert_approval", actor.name, at, record.proposal.incident_id,
                         record.id, {"approvals": len(record.revert_approvals) + 1,
                                     "identity": actor.to_json(), **bound})
        return self.proposal(record.id)

    def transition(self, ref: str, new_state: str, actor: str, at: datetime,
                   data: dict[str, Any] | None = None) -> ProposalRecord:
        record = self.proposal(ref)
        with self._tx() as cur:
            self._cas(cur, record, new_state, actor, at, data or {})
        return self.proposal(record.id)

    def claim_execution(self, ref: str, actor: str, at: datetime,
                        plan: dict[str, Any]) -> ProposalRecord | None:
        """Move approved -> executing for exactly one caller; the others get None."""
        record = self.proposal(ref)
        if record.state != "approved":
            return None
        with self._tx() as cur:
            cur.execute(
                "UPDATE proposals SET state = 'executing', claimed_by = ?, plan = ?, updated_at = ? "
                "WHERE id = ? AND state = 'approved'",
                (actor, json.dumps(plan, default=str), self._stamp(at), record.id),
            )
            if cur.rowcount != 1:
                return None
            self._append(cur, "execution_started", actor, at, record.proposal.incident_id,
                         record.id, {"plan": plan})
        return self.proposal(record.id)

    def _cas(self, cur: Any, record: ProposalRecord, new_state: str, actor: str, at: datetime,
             data: dict[str, Any]) -> None:
        check_transition(record.state, new_state)
        cur.execute("UPDATE proposals SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                    (new_state, self._stamp(at), record.id, record.state))
        if cur.rowcount != 1:
            raise TransitionError(f"proposal {record.id} changed concurrently; try again")
        self._append(cur, f"proposal_{new_state}", actor, at, record.proposal.incident_id,
                     record.id, {"from": record.state, **data})

    def try_lead(self, name: str) -> bool:
        return True

    def clock(self) -> datetime | None:
        return None  # one host (SQLite): the caller's clock is the only one

    def state_counts(self) -> dict[str, dict[str, int]]:
        """How many incidents are in each status and proposals in each state (for /metrics)."""
        with self._tx() as cur:
            cur.execute("SELECT status, COUNT(*) FROM incidents GROUP BY status")
            incidents = {str(r[0]): int(r[1]) for r in cur.fetchall()}
            cur.execute("SELECT state, COUNT(*) FROM proposals GROUP BY state")
            proposals = {str(r[0]): int(r[1]) for r in cur.fetchall()}
        return {"incidents": incidents, "proposals": proposals}

    # -- heartbeats ----------------------------------------------------------------------------
    def beat(self, role: str, holder: str, at: datetime) -> None:
        """Record that `holder` is alive in `role` (one row per role, overwritten: not history)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO heartbeats (role, holder, at) VALUES (?, ?, ?) ON CONFLICT (role) "
                        "DO UPDATE SET holder = excluded.holder, at = excluded.at",
                        (role, holder, self._stamp(at)))

    def heartbeat(self, role: str) -> tuple[str, datetime] | None:
        """Who last beat in `role`, and when; None if nobody ever did."""
        with self._tx() as cur:
            cur.execute("SELECT holder, at FROM heartbeats WHERE role = ?", (role,))
            row = cur.fetchone()
        return (row[0], _dt(row[1])) if row else None


def _initial_state(verdict: Verdict) -> str:
    return {"allow": "approved", "needs_approval": "proposed", "deny": "denied"}[verdict.decision]


def _check_approvable(record: ProposalRecord, who: Identity, at: datetime, state: str) -> None:
    if record.state != state:
        raise TransitionError(f"proposal {record.id} is {record.state}; only {state} can be approved")
    if record.expires_at is not None and at >= record.expires_at:
        raise TransitionError(f"proposal {record.id} expired at {record.expires_at:%Y-%m-%d %H:%M}Z")
    if any(who.same_person(p) for p in record.proposal.proposers()):
        raise TransitionError(f"{who.name} proposed {record.id} and cannot also approve it "
                              "(separation of duties)")
    if any(who.same_person(a.identity) for a in record.approvals):
        raise TransitionError(f"{who.name} has already approved {record.id} "
                              f"(as {who.subject!r}; one person counts once)")


def _match(exact: bool) -> str:
    return "id = ?" if exact else "id LIKE ? ESCAPE '\\'"


def _pattern(ref: str, exact: bool) -> str:
    """`ref` itself, or a LIKE prefix pattern in which `%`, `_` and `\\` match only themselves."""
    if exact:
        return ref
    return ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _one(rows: list[Row], what: str, ref: str) -> Row:
    if not rows:
        raise LedgerError(f"no {what} matches {ref!r}", code="not_found")
    exact = [r for r in rows if r[0] == ref]
    if exact:
        return exact[0]
    if len(rows) > 1:
        ids = ", ".join(str(r[0]) for r in rows[:5])
        raise LedgerError(f"{ref!r} matches several {what}s ({ids}); give more of the id",
                          code="ambiguous")
    return rows[0]


def iter_migrations(migrations: Sequence[T]) -> Iterator[tuple[int, T]]:
    """(version, sql) pairs, version counted from 1."""
    yield from enumerate(migrations, start=1)
