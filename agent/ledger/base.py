"""Ledger records, the proposal state machine, and the interface every backend implements.

Proposal states: proposed -> approved | rejected | expired | denied; approved -> executing ->
succeeded | failed, or -> expired when not executed within the policy's approval TTL;
succeeded | failed -> reverted; denied -> approved only by a cooldown override.
`claim_execution` is the compare-and-set that makes execution happen once, whatever crashes or
how many daemons run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agent.ledger.chain import Anchor, ChainRow, Verification
from agent.model import HemostatError, Proposal, Verdict
from agent.model.identity import Approval, Identity

ALLOWED: dict[str, frozenset[str]] = {
    "proposed": frozenset({"approved", "rejected", "expired"}),
    "denied": frozenset({"approved"}),  # only a recorded cooldown override (agent/override.py)
    "approved": frozenset({"executing", "expired", "rejected"}),  # rejected: policy at run time
    "executing": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset({"reverted"}),
    "failed": frozenset({"reverted"}),
}
INCIDENT_STATUSES = (
    "opened", "triaged", "investigating", "identified", "mitigating", "monitoring", "resolved",
)


class LedgerError(HemostatError):
    code = "ledger"


class TransitionError(LedgerError):
    """A state change that the state machine or a concurrent writer did not allow."""

    code = "transition"


def check_transition(current: str, new: str) -> None:
    if new not in ALLOWED.get(current, frozenset()):
        raise TransitionError(f"cannot go from {current} to {new}")


@dataclass(frozen=True)
class Event:
    """One line of the timeline. `seq` is the ledger's order; `at` the time it happened."""

    seq: int
    at: datetime
    type: str
    actor: str
    incident_id: str | None = None
    proposal_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "at": self.at.isoformat(), "type": self.type, "actor": self.actor,
            "incident_id": self.incident_id, "proposal_id": self.proposal_id, "data": self.data,
        }


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    target: str
    title: str
    status: str
    severity: int
    opened_at: datetime
    updated_at: datetime
    group_key: str | None = None
    resolved_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "target": self.target, "title": self.title, "status": self.status,
            "severity": f"SEV-{self.severity}", "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(), "group_key": self.group_key,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "data": self.data,
        }


@dataclass(frozen=True)
class ProposalRecord:
    """A proposal as the ledger holds it: the proposal, its verdict, its state and its plan."""

    proposal: Proposal
    verdict: Verdict
    state: str
    updated_at: datetime
    expires_at: datetime | None
    approvers: tuple[str, ...] = ()
    plan: dict[str, Any] | None = None
    claimed_by: str | None = None
    approvals: tuple[Approval, ...] = ()  # who approved, as authenticated; `approvers` names them
    revert_approvals: tuple[Approval, ...] = ()

    @property
    def id(self) -> str:
        return self.proposal.id

    def to_json(self) -> dict[str, Any]:
        return {
            **self.proposal.to_json(), "verdict": self.verdict.to_json(), "state": self.state,
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "approvers": list(self.approvers), "plan": self.plan, "claimed_by": self.claimed_by,
            "approvals": [a.to_json() for a in self.approvals],
            **({"revert_approvals": [a.to_json() for a in self.revert_approvals]}
               if self.revert_approvals else {}),
        }


class Ledger(Protocol):
    """What every backend provides. All writes append events in the same transaction."""

    def close(self) -> None: ...

    def append(self, type: str, actor: str, at: datetime, *, incident_id: str | None = None,
               proposal_id: str | None = None, data: dict[str, Any] | None = None) -> Event: ...

    def events(self, *, incident_id: str | None = None, proposal_id: str | None = None,
               after_seq: int = 0, limit: int | None = None,
               types: Sequence[str] | None = None) -> list[Event]: ...

    def open_incident(self, incident: IncidentRecord, actor: str) -> IncidentRecord: ...

    def open_or_join(self, incident: IncidentRecord, actor: str) -> tuple[IncidentRecord, bool]: ...

    def find_open_incident(self, *, group_key: str | None = None,
                           target: str | None = None) -> IncidentRecord | None: ...

    def incident(self, ref: str, *, exact: bool = False) -> IncidentRecord: ...

    def incidents(self, *, open_only: bool = False) -> list[IncidentRecord]: ...

    def set_incident_status(self, incident_id: str, status: str, actor: str, at: datetime,
                            *, severity: int | None = None,
                            data: dict[str, Any] | None = None) -> IncidentRecord: ...

    def add_proposal(self, proposal: Proposal, verdict: Verdict, at: datetime,
                     expires_at: datetime | None) -> ProposalRecord: ...

    def proposal(self, ref: str, *, exact: bool = False) -> ProposalRecord: ...

    def proposals(self, *, states: tuple[str, ...] | None = None,
                  incident_id: str | None = None) -> list[ProposalRecord]: ...

    def approve(self, ref: str, actor: Identity | str, at: datetime,
                override: dict[str, Any] | None = None, seal_key: bytes | None = None) -> ProposalRecord:
        """Record an approval by `actor` (a bare name is an asserted identity); moves the
        proposal to approved once the verdict's count is reached. Policy checks happen before.
        `override` approves a *denied* proposal (a cooldown override) and records why. The
        approval event carries the proposal's content hash and, with `seal_key`, the daemon's
        seal (agent.ledger.binding)."""
        ...

    def approve_revert(self, ref: str, actor: Identity, at: datetime,
                       seal_key: bytes | None = None) -> ProposalRecord:
        """Record an approval of reverting an executed proposal (no state change)."""
        ...

    def transition(self, ref: str, new_state: str, actor: str, at: datetime,
                   data: dict[str, Any] | None = None) -> ProposalRecord: ...

    def claim_execution(self, ref: str, actor: str, at: datetime,
                        plan: dict[str, Any]) -> ProposalRecord | None: ...

    def clock(self) -> datetime | None:
        """The ledger's own time where replicas on several hosts share it (PostgreSQL: claims
        are stamped with it, and a new leader measures their leases against it, so a replica
        whose clock is ahead cannot settle another's execution early); None: the caller's."""
        ...

    def state_counts(self) -> dict[str, dict[str, int]]: ...

    def verify_chain(self, expect: Anchor | None = None, seal_key: bytes | None = None) -> Verification:
        """Recompute the events' hash chain (agent/ledger/chain.py), naming the first broken link,
        then the records from the events (agent/ledger/projection.py), naming any that differ."""
        ...

    def chain_rows(self, after_seq: int = 0) -> Iterator[ChainRow]: ...

    def head(self) -> Anchor:
        """The chain's head: the newest event's (seq, hash)."""
        ...

    def anchors(self) -> list[Anchor]:
        """Every prune anchor, oldest first."""
        ...

    def prune_through(self, through_seq: int, actor: str, at: datetime) -> int:
        """Delete events up to `through_seq` behind an anchor, so the chain still verifies."""
        ...

    def beat(self, role: str, holder: str, at: datetime) -> None: ...

    def heartbeat(self, role: str) -> tuple[str, datetime] | None: ...

    def try_lead(self, name: str) -> bool:
        """True while this process leads (executes). `name` is the candidate's identity, shown
        to operators; it is not the lock: every replica competes for the same one."""
        ...
